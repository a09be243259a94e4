"""The judge's agreement with people (manifest.json `human_agreement`, from `synth-empathy calibrate`), written
out for the terminal, the data card and the HTML report. Without labels, each says the judge is uncalibrated."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

DIMENSIONS = (("sensibility", "sensibility (0-10)"), ("rationality", "rationality (0-10)"), ("er", "ER (0-2)"),
              ("ip", "IP (0-2)"), ("ex", "EX (0-2)"), ("sentiment_attenuation", "sentiment attenuation"),
              ("granularity_mismatch", "granularity mismatch"), ("conflict_avoidance", "conflict avoidance"),
              ("linguistic_distancing", "linguistic distancing"), ("keep", "keep / reject"))
UNCALIBRATED = ("The judge is uncalibrated: no person has labelled these dialogues, so how far its scores agree "
                "with people is unknown (label some with `synth-empathy review DIR`, then run "
                "`synth-empathy calibrate DIR`).")


def _n(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _with_ci(fig: Mapping[str, Any], key: str) -> str:
    ci = fig.get(f"{key}_ci")
    return _n(fig.get(key)) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def headline(ha: Mapping[str, Any] | None) -> str:
    """One sentence: "judge agreement with N human labels: kappa ..." or that it is uncalibrated."""
    if not ha:
        return UNCALIBRATED
    j, keep = ha["judge"], ha["keep"]
    return (f"Judge agreement with {keep['n']:,} human labels ({len(ha['reviewers'])} reviewer"
            f"{'s' if len(ha['reviewers']) != 1 else ''}): quadratic-weighted kappa "
            f"{_with_ci(j['sensibility'], 'kappa')} on sensibility, {_with_ci(j['rationality'], 'kappa')} on "
            f"rationality; keep/reject accuracy {_with_ci(keep, 'accuracy')}, kappa {_with_ci(keep, 'kappa')} "
            f"(95% bootstrap intervals).")


def rows(side: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(dimension, N, kappa [CI], Spearman [CI], exact accuracy [CI]) for a judge or inter-reviewer block."""
    out = []
    for key, name in DIMENSIONS:
        fig = side.get(key)
        if not fig or not fig.get("n"):
            continue
        rho = _with_ci(fig, "spearman") if fig.get("weights") == "quadratic" else "-"
        out.append((name, f"{fig['n']:,}", _with_ci(fig, "kappa"), rho, _with_ci(fig, "accuracy")))
    return out


def _judge_side(ha: Mapping[str, Any]) -> dict[str, Any]:
    return {**ha["judge"], "keep": ha["keep"]}


def thresholds_sentence(ha: Mapping[str, Any]) -> str:
    p = ha.get("proposed_thresholds")
    if not p:
        return "No labelled dialogue carries judge scores, so no keep thresholds are proposed."
    c = p["current"]
    return (f"Keep thresholds that best match the {p['n']:,} human keep/reject decisions: sensibility >= "
            f"{p['min_sensibility']:g}, rationality >= {p['min_rationality']:g} (accuracy {_n(p['accuracy'])}, "
            f"kappa {_n(p['kappa'])}); the run used sensibility >= {c['min_sensibility']:g}, rationality >= "
            f"{c['min_rationality']:g} (accuracy {_n(c['accuracy'])}, kappa {_n(c['kappa'])}).")


def format_text(ha: Mapping[str, Any] | None) -> str:
    """The terminal block of `calibrate` and `stats`."""
    if not ha:
        return "human labels  none: " + UNCALIBRATED
    lines = [f"human labels  {ha['labels']:,} labels of {ha['dialogues']:,} dialogues by "
             f"{', '.join(ha['reviewers'])}; {ha['judged_labels']:,} of them on judge-scored dialogues "
             f"(computed {ha.get('computed', 'n/a')})"]
    header = f"  {'judge vs human':<24} {'n':>5}  {'kappa [95% CI]':<22} {'spearman [95% CI]':<22} accuracy [95% CI]"
    lines.append(header)
    lines += [f"  {a:<24} {b:>5}  {c:<22} {d:<22} {e}" for a, b, c, d, e in rows(_judge_side(ha))]
    inter = ha.get("inter_reviewer") or {}
    if inter.get("pairs"):
        lines.append(f"  {'reviewer vs reviewer':<24} {'n':>5}  ({inter['pairs']:,} pairs of labels of one dialogue)")
        lines += [f"  {a:<24} {b:>5}  {c:<22} {d:<22} {e}" for a, b, c, d, e in rows(inter)]
    else:
        lines.append("  inter-reviewer agreement: no dialogue has labels from two reviewers yet")
    lines.append("  " + thresholds_sentence(ha))
    return "\n".join(lines)


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(out) + "\n"


def card_section(ha: Mapping[str, Any] | None) -> str:
    """The data card's "Judge agreement with people" section (Markdown)."""
    if not ha:
        return f"{UNCALIBRATED}\n"
    header = ("dimension", "labels", "kappa [95% CI]", "Spearman [95% CI]", "exact agreement [95% CI]")
    parts = [headline(ha) + "\n\n", _md_table(header, rows(_judge_side(ha)))]
    inter = ha.get("inter_reviewer") or {}
    if inter.get("pairs"):
        parts.append(f"\nReviewers among themselves ({inter['pairs']:,} pairs of labels on one dialogue):\n\n"
                     + _md_table(header, rows(inter)))
    else:
        parts.append("\nNo dialogue has labels from two reviewers, so agreement between people is not measured.\n")
    parts.append("\n" + thresholds_sentence(ha) + " Kappa on 0-10 and 0-2 scales is quadratic-weighted; the "
                 "judge's averaged scores are rounded to whole levels for kappa and exact agreement.\n")
    return "".join(parts)


def confusion_svg(confusion: Mapping[str, int]) -> str:
    """A 2 x 2 keep/reject confusion plot: human verdict in rows, judge verdict in columns, shade by count."""
    cells = [("human keep", "judge keep", confusion["both_keep"], True),
             ("human keep", "judge reject", confusion["human_keep_judge_reject"], False),
             ("human reject", "judge keep", confusion["human_reject_judge_keep"], False),
             ("human reject", "judge reject", confusion["both_reject"], True)]
    peak = max([c[2] for c in cells] + [1])
    w, h, left, top, size = 330, 230, 110, 40, 90
    parts = [f'<text x="{left + size}" y="18" font-size="12" text-anchor="middle" fill="#1f2933">judge</text>',
             f'<text x="{left + size / 2}" y="34" font-size="11" text-anchor="middle" fill="#6b7785">keep</text>',
             f'<text x="{left + size * 1.5}" y="34" font-size="11" text-anchor="middle" fill="#6b7785">reject</text>',
             f'<text x="{left - 10}" y="{top + size / 2 + 4}" font-size="11" text-anchor="end" fill="#6b7785">'
             f'human keep</text>',
             f'<text x="{left - 10}" y="{top + size * 1.5 + 4}" font-size="11" text-anchor="end" fill="#6b7785">'
             f'human reject</text>']
    for k, (row, col, count, agree) in enumerate(cells):
        x, y = left + (k % 2) * size, top + (k // 2) * size
        strength = 0.15 + 0.85 * count / peak if count else 0.0
        color = "42,157,143" if agree else "231,111,81"
        ink = "#ffffff" if strength > 0.55 else "#1f2933"
        parts.append(f'<rect class="cell" x="{x + 1}" y="{y + 1}" width="{size - 2}" height="{size - 2}" rx="4" '
                     f'fill="rgba({color},{strength:.2f})" stroke="#e4e8ec">'
                     f'<title>{row}, {col}: {count}</title></rect>')
        parts.append(f'<text x="{x + size / 2}" y="{y + size / 2 + 7}" font-size="20" font-weight="600" '
                     f'text-anchor="middle" fill="{ink}">{count}</text>')
    return (f'<svg id="keep-confusion" class="chart" role="img" aria-label="judge vs human keep decisions" '
            f'viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>judge vs human keep decisions</title>'
            + "".join(parts) + "</svg>")


def report_section(ha: Mapping[str, Any] | None) -> str:
    """The report's "Judge agreement with people" section (HTML, inline SVG)."""
    e = html.escape
    if not ha:
        return (f'<section id="human-agreement"><h2>Judge agreement with people</h2>'
                f'<p class="note">{e(UNCALIBRATED)}</p></section>')
    header = ("dimension", "labels", "kappa [95% CI]", "Spearman [95% CI]", "exact agreement [95% CI]")

    def table(body: Sequence[Sequence[str]]) -> str:
        return ("<table><thead><tr>" + "".join(f"<th>{e(x)}</th>" for x in header) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f'<td style="white-space:nowrap">{e(c)}</td>' for c in row) + "</tr>"
                          for row in body)
                + "</tbody></table>")

    inter = ha.get("inter_reviewer") or {}
    inter_html = (f"<h3>Reviewers among themselves ({inter['pairs']:,} pairs)</h3>{table(rows(inter))}"
                  if inter.get("pairs") else
                  '<p class="note">No dialogue has labels from two reviewers yet.</p>')
    return (f'<section id="human-agreement"><h2>Judge agreement with people</h2><p class="note">{e(headline(ha))}</p>'
            f'<div class="grid2" style="grid-template-columns: 340px 1fr">'
            f'<div><h3>Keep / reject: judge vs people</h3>{confusion_svg(ha["keep"]["confusion"])}'
            f'<p class="note">{e(thresholds_sentence(ha))}</p></div>'
            f'<div><h3>Judge vs people</h3>{table(rows(_judge_side(ha)))}{inter_html}</div></div></section>')
