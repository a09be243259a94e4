"""A self-contained HTML report of a corpus: inline CSS and inline SVG plots, no external resources, opens offline.

The numbers are `corpus_stats`; this module only draws them. Every chart is a small function returning an
`<svg>` string, so the report needs no plotting library.
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_empathy.corpus.read import Corpus, read_corpus
from synth_empathy.errors import UserError
from synth_empathy.publish.human_agreement import report_section
from synth_empathy.publish.stats import (
    SCORE_METRICS,
    catalog_for,
    cell_counts,
    seeker_intensities,
    stats_for_corpus,
)
from synth_empathy.publish.stats import format_number as _num
from synth_empathy.publish.stats import format_percent as _pct
from synth_empathy.schema import Dialogue

if TYPE_CHECKING:
    from synth_empathy.graphs.catalog import Catalog

SAMPLE_DIALOGUES = 24
TRAJECTORY_LINES = 150  # individual seeker trajectories drawn behind the mean; more is just ink

KEPT_COLOR = "#2a9d8f"
REJECTED_COLOR = "#e76f51"
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e4e8ec"
HEAT_LOW = (233, 245, 243)
HEAT_HIGH = (20, 90, 82)
FONT = "-apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)



def _axis(peak: float, ticks: int = 4) -> tuple[int, int]:
    """(axis maximum, tick step) in whole numbers: steps of 1, 2, 5, 10, 20, 50, ... with about `ticks` ticks."""
    raw = max(peak, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return int(math.ceil(max(peak, 1) / step) * step), int(step)


def _svg(width: int, height: int, body: str, ident: str, label: str) -> str:
    # Natural size, shrunk by CSS (max-width: 100%) only when the column is narrower: text stays legible.
    return (f'<svg id="{ident}" class="chart" role="img" aria-label="{_e(label)}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" '
            f'font-family="{_e(FONT)}"><title>{_e(label)}</title>{body}</svg>')


def _text(x: float, y: float, s: Any, size: int = 12, anchor: str = "middle", color: str = MUTED,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" {extra}>'
            f'{_e(s)}</text>')


# ------------------------------------------------------------------ charts


def score_histogram_svg(metric: str, bins: Sequence[int], kept: Sequence[int], rejected: Sequence[int],
                        threshold: float | None = None) -> str:
    """Stacked bars per whole score: kept below, judge-rejected on top, and the keep threshold as a dashed line."""
    w, h, left, right, top, bottom = 520, 260, 44, 14, 18, 40
    pw, ph = w - left - right, h - top - bottom
    peak, step = _axis(max([k + r for k, r in zip(kept, rejected, strict=True)] + [1]))
    slot = pw / len(bins)
    parts = []
    for v in range(0, peak + 1, step):
        y = top + ph - ph * v / peak
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, v, 11, "end"))
    for i, (b, k, r) in enumerate(zip(bins, kept, rejected, strict=True)):
        x = left + i * slot + slot * 0.14
        bw = slot * 0.72
        hk, hr = ph * k / peak, ph * r / peak
        y0 = top + ph
        if k:
            parts.append(f'<rect class="bar kept" x="{x:.1f}" y="{y0 - hk:.1f}" width="{bw:.1f}" height="{hk:.1f}" '
                         f'rx="2" fill="{KEPT_COLOR}"><title>score {b}: {k} kept</title></rect>')
        if r:
            parts.append(f'<rect class="bar rejected" x="{x:.1f}" y="{y0 - hk - hr:.1f}" width="{bw:.1f}" '
                         f'height="{hr:.1f}" rx="2" fill="{REJECTED_COLOR}"><title>score {b}: {r} rejected by '
                         f'the judge</title></rect>')
        if k + r:
            parts.append(_text(x + bw / 2, y0 - hk - hr - 4, k + r, 10, color=INK))
        parts.append(_text(x + bw / 2, y0 + 15, b, 11))
    if threshold is not None:
        x = left + (threshold - bins[0]) * slot  # bin b spans [b - 0.5, b + 0.5): the threshold sits at a bin edge
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + ph}" stroke="{INK}" '
                     f'stroke-dasharray="4 3" stroke-width="1.2"/>')
        parts.append(_text(x + 4, top + 8, f"keep ≥ {threshold:g}", 11, "start", INK))
    parts.append(f'<line x1="{left}" x2="{w - right}" y1="{top + ph}" y2="{top + ph}" stroke="{MUTED}"/>')
    parts.append(_text(left + pw / 2, h - 6, f"{metric} (0-10)", 12, color=INK))
    return _svg(w, h, "".join(parts), f"score-{metric}", f"{metric} score distribution")


def hbar_svg(ident: str, label: str, counts: Mapping[str, int], color: str = KEPT_COLOR, limit: int = 32,
             label_width: int = 170, total: int | None = None, width: int = 520) -> str:
    """Horizontal bars in the given order (largest first from corpus_stats), with count and share."""
    items = list(counts.items())[:limit]
    total = total if total is not None else sum(counts.values())
    row, w = 20, width
    h = max(row * len(items) + 8, 28)
    peak = max([v for _, v in items] + [1])
    bar_w = w - label_width - 80
    parts = []
    for i, (name, v) in enumerate(items):
        y = 4 + i * row
        bw = max(2.0, bar_w * v / peak)
        share = f" · {v / total:.0%}" if total else ""
        parts.append(_text(label_width - 8, y + 13, name.replace("_", " "), 12, "end", INK))
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{bw:.1f}" height="{row - 6}" rx="3" '
                     f'fill="{color}"><title>{_e(name)}: {v}</title></rect>')
        parts.append(_text(label_width + bw + 6, y + 13, f"{v:,}{share}", 11, "start"))
    if not items:
        parts.append(_text(w / 2, 18, "nothing to show", 12))
    return _svg(w, h, "".join(parts), ident, label)


def _heat(count: int, peak: int) -> str:
    t = math.sqrt(count / peak) if peak else 0.0  # sqrt: one dialogue in a cell must still be visible
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return f"rgb({r},{g},{b})"


def coverage_heatmap_svg(cells: Mapping[tuple[str, str], int], emotions: Sequence[str], problems: Sequence[str],
                         plausible: set[tuple[str, str]] | None, breaks: Sequence[int] = ()) -> str:
    """Emotion rows x problem type columns; colour is the number of kept dialogues in the cell. With a catalog,
    plausible empty cells are white with a border and implausible ones (no situation) light grey. A rule is
    drawn above each row index in `breaks` (where a valence group starts)."""
    cw, ch, left, top = 36, 18, 140, 130
    w = left + cw * len(problems) + 150
    h = top + ch * len(emotions) + 16
    peak = max(list(cells.values()) + [1])
    parts = []
    for j, p in enumerate(problems):
        x = left + j * cw + cw / 2
        parts.append(f'<text x="{x:.1f}" y="{top - 6}" font-size="11" fill="{INK}" text-anchor="start" '
                     f'transform="rotate(-50 {x:.1f} {top - 6})">{_e(p.replace("_", " "))}</text>')
    for i in breaks:
        y = top + i * ch
        parts.append(f'<line x1="{left - 120}" x2="{left + cw * len(problems)}" y1="{y}" y2="{y}" '
                     f'stroke="{MUTED}" stroke-width="1" stroke-dasharray="2 2"/>')
    for i, e in enumerate(emotions):
        y = top + i * ch
        parts.append(_text(left - 6, y + ch - 5, e, 11, "end", INK))
        for j, p in enumerate(problems):
            x = left + j * cw
            n = cells.get((e, p), 0)
            if n:
                fill, stroke, cls = _heat(n, peak), "#ffffff", "cell covered"
            elif plausible is None or (e, p) in plausible:
                fill, stroke, cls = "#ffffff", "#d5dbe1", "cell empty"
            else:
                fill, stroke, cls = "#eef0f2", "#ffffff", "cell implausible"
            what = f"{n} kept" if n else ("no dialogue yet" if plausible is None or (e, p) in plausible
                                          else "no situation in the catalog")
            parts.append(f'<rect class="{cls}" x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" rx="2" '
                         f'fill="{fill}" stroke="{stroke}"><title>{_e(e)} × {_e(p)}: {what}</title></rect>')
            if n:
                color = "#ffffff" if n / peak > 0.35 else INK
                parts.append(_text(x + cw / 2, y + ch - 5, n, 9, color=color))
    # legend
    lx, ly = left + cw * len(problems) + 24, top
    parts.append(_text(lx, ly - 8, "kept dialogues", 11, "start", INK))
    steps = sorted({1, max(1, peak // 4), max(1, peak // 2), peak})
    for k, v in enumerate(steps):
        parts.append(f'<rect x="{lx}" y="{ly + k * 20}" width="22" height="15" rx="2" fill="{_heat(v, peak)}"/>')
        parts.append(_text(lx + 30, ly + k * 20 + 12, v, 11, "start"))
    y = ly + len(steps) * 20 + 8
    parts.append(f'<rect x="{lx}" y="{y}" width="22" height="15" rx="2" fill="#ffffff" stroke="#d5dbe1"/>')
    parts.append(_text(lx + 30, y + 12, "plausible, empty" if plausible is not None else "empty", 11, "start"))
    if plausible is not None:
        parts.append(f'<rect x="{lx}" y="{y + 20}" width="22" height="15" rx="2" fill="#eef0f2"/>')
        parts.append(_text(lx + 30, y + 32, "no situation", 11, "start"))
    return _svg(w, h, "".join(parts), "coverage-heatmap", "coverage of emotion x problem type cells")


def intensity_svg(trajectories: Sequence[Sequence[int]], means: Sequence[Mapping[str, Any]]) -> str:
    """Seeker intensity (0-10) at each seeker turn: one faint line per dialogue, the mean in bold."""
    w, h, left, right, top, bottom = 1080, 320, 60, 24, 18, 42
    pw, ph = w - left - right, h - top - bottom
    turns = max([len(t) for t in trajectories] + [m["turn"] for m in means] + [2])

    def xy(turn: int, value: float) -> tuple[float, float]:
        return left + pw * (turn - 1) / (turns - 1), top + ph - ph * value / 10

    parts = []
    for v in range(0, 11, 2):
        _, y = xy(1, v)
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, v, 11, "end"))
    for t in range(1, turns + 1):
        x, _ = xy(t, 0)
        parts.append(_text(x, top + ph + 16, t, 11))
    rng = random.Random(0)
    for traj in trajectories:
        if len(traj) < 2:
            continue
        jitter = rng.uniform(-0.12, 0.12)  # overlapping integer paths would draw as one line
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i + 1, v + jitter) for i, v in enumerate(traj)))
        parts.append(f'<polyline class="trajectory" points="{pts}" fill="none" stroke="{KEPT_COLOR}" '
                     f'stroke-opacity="0.22" stroke-width="1.2"/>')
    if means:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(m["turn"], m["mean"]) for m in means))
        parts.append(f'<polyline class="mean" points="{pts}" fill="none" stroke="{INK}" stroke-width="2.6"/>')
        for m in means:
            x, y = xy(m["turn"], m["mean"])
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{INK}"><title>turn {m["turn"]}: mean '
                         f'{m["mean"]:.2f} over {m["n"]} dialogues</title></circle>')
            parts.append(_text(x, y - 10, f'{m["mean"]:.1f}', 12, color=INK,
                               extra='font-weight="600" stroke="#ffffff" stroke-width="3" paint-order="stroke"'))
    else:
        parts.append(_text(w / 2, h / 2, "no seeker intensities recorded", 13))
    parts.append(_text(left + pw / 2, h - 8, "seeker turn", 12, color=INK))
    parts.append(_text(16, top + ph / 2, "intensity", 12, color=INK,
                       extra=f'transform="rotate(-90 16 {top + ph / 2})"'))
    return _svg(w, h, "".join(parts), "intensity-trajectories", "seeker intensity per turn")


# ------------------------------------------------------------------ page pieces


def _kpis(stats: Mapping[str, Any]) -> str:
    c, s, cov, usage = stats["counts"], stats["scores"], stats["coverage"], stats["usage"]
    cost = usage.get("cost_usd")
    items = [
        ("kept", f"{c['kept']:,}", f"of {c['finished']:,} finished" + (
            f", {c['planned']:,} planned" if c.get("planned") is not None else "")),
        ("keep rate", _pct(c["keep_rate"]), f"{c['rejected']:,} rejected"),
        ("sensibility", _num(s["sensibility"]["kept"]["mean"], 1), "mean of kept, 0-10"),
        ("rationality", _num(s["rationality"]["kept"]["mean"], 1), "mean of kept, 0-10"),
        ("cell coverage", "n/a" if "skipped" in cov else _pct(cov["cell_coverage"]),
         "catalog not loaded" if "skipped" in cov else f"{cov['cells_covered']} of {cov['cells_possible']} cells"),
        ("distinct-2", _num(stats["diversity"]["distinct_2"], 3), "supporter turns"),
        ("tokens", f"{usage['total']['tokens']:,}", f"{usage['total']['calls']:,} calls"),
        ("cost", f"${cost:,.2f}" if cost is not None else "n/a", "recorded" if cost is not None else "not recorded"),
    ]
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><div class="kpi-label">{_e(a)}</div><div class="kpi-value">{_e(b)}</div>'
        f'<div class="kpi-note">{_e(n)}</div></div>' for a, b, n in items) + "</div>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _rejections(stats: Mapping[str, Any]) -> str:
    rej = stats["rejections"]
    if not rej["by_stage"]:
        return '<p class="note">Nothing was rejected.</p>'
    stage_bars = hbar_svg("rejections-by-stage", "rejections by stage", rej["by_stage"], REJECTED_COLOR,
                          label_width=110)
    reason_bars = hbar_svg("rejections-by-reason", "rejections by reason", rej["by_reason"], "#f4a261",
                           label_width=170, total=sum(rej["by_stage"].values()))
    return (f'<div class="grid2"><div><h3>By stage</h3>{stage_bars}</div>'
            f'<div><h3>By reason</h3>{reason_bars}</div></div>')


def _heatmap_section(dialogues: Sequence[Dialogue], stats: Mapping[str, Any], catalog: Catalog | None) -> str:
    cells = cell_counts(dialogues)
    cov = stats["coverage"]
    if catalog is not None:
        from synth_empathy.graphs.sampler import plausible_cells

        plausible = set(plausible_cells(catalog))
        order = {"negative": 0, "mixed": 1, "positive": 2}
        ranked = sorted(catalog.emotions, key=lambda e: (order.get(e.valence, 3), e.id))
        emotions = [e.id for e in ranked]
        breaks = [i for i in range(1, len(ranked)) if ranked[i].valence != ranked[i - 1].valence]
        problems = [p.id for p in catalog.problem_types]
        extra_e = sorted({e for e, _ in cells} - set(emotions))
        extra_p = sorted({p for _, p in cells} - set(problems))
        emotions, problems = emotions + extra_e, problems + extra_p
        note = (f"{cov['cells_covered']} of {cov['cells_possible']} plausible cells hold a kept dialogue "
                f"({_pct(cov['cell_coverage'])}). Normalized entropy: emotions {_num(cov['emotion_entropy'])}, "
                f"problem types {_num(cov['problem_type_entropy'])}, personas {_num(cov['persona_entropy'])}. "
                f"Emotions are grouped by valence: negative, mixed, positive (dotted rules).")
    else:
        plausible, breaks = None, []
        emotions = sorted({e for e, _ in cells})
        problems = sorted({p for _, p in cells})
        note = f"Only the cells seen in the corpus are drawn: {cov.get('skipped', 'no catalog')}."
    if not cells and not plausible:
        return '<p class="note">No kept dialogue to place.</p>'
    heatmap = coverage_heatmap_svg(cells, emotions, problems, plausible, breaks)
    return f'<p class="note">{_e(note)}</p><div class="scroll">{heatmap}</div>'


def _score_chip(label: str, value: float | None, threshold: float | None) -> str:
    if value is None:
        return f'<span class="chip muted">{_e(label)} n/a</span>'
    cls = "good" if threshold is None or value >= threshold else "bad"
    return f'<span class="chip {cls}">{_e(label)} {value:g}</span>'


def _dialogue_html(d: Dialogue, thresholds: Mapping[str, float | None], open_: bool = False) -> str:
    s = d.scores
    chips = "".join(_score_chip(m, getattr(s, m) if s else None, thresholds.get(m))
                    for m in SCORE_METRICS)
    epitome = (f'<span class="chip muted">ER {s.er:g} · IP {s.ip:g} · EX {s.ex:g}</span>' if s else "")
    crisis = '<span class="chip bad">crisis</span>' if d.crisis else ""
    turns = []
    for t in d.turns:
        if t.role == "seeker":
            meta = f'seeker · intensity {t.intensity}' if t.intensity is not None else "seeker"
        else:
            meta = f'supporter · {(t.strategy or "").replace("_", " ")}' + (" · revised" if t.revised else "")
        turns.append(f'<div class="turn {t.role}"><div class="meta">{_e(meta)}</div>'
                     f'<div class="bubble">{_e(t.text)}</div></div>')
    failures = [k.replace("_", " ") for k, v in (s.failures.items() if s else []) if v]
    rationale = (f'<p class="rationale"><b>Judge:</b> {_e(s.rationale)}'
                 + (f' <i>(flags: {_e(", ".join(failures))})</i>' if failures else "") + "</p>"
                 if s and (s.rationale or failures) else "")
    seed = d.seed
    return (
        f'<details class="dialogue"{" open" if open_ else ""}><summary><span class="did">{_e(d.id)}</span>'
        f'<span class="topic">{_e(seed.emotion)} · {_e(seed.problem_type.replace("_", " "))}</span>'
        f'<span class="persona">{_e(seed.persona.name)}, {_e(seed.persona.age_band)}</span>'
        f'<span class="chips">{chips}{crisis}</span></summary>'
        f'<div class="body"><p class="situation"><b>Situation:</b> {_e(seed.situation.text)} '
        f'<span class="muted">(start intensity {seed.intensity}, {len(d.turns)} turns, ended: '
        f'{_e(d.ending.replace("_", " "))})</span> {epitome}</p>'
        f'<div class="chat">{"".join(turns)}</div>{rationale}</div></details>'
    )


def sample_dialogues(dialogues: Sequence[Dialogue], k: int = SAMPLE_DIALOGUES, seed: int = 0) -> list[Dialogue]:
    """A seeded sample, best judged first (so the first rows show what the corpus is for)."""
    chosen = list(dialogues) if len(dialogues) <= k else random.Random(seed).sample(list(dialogues), k)
    return sorted(chosen, key=lambda d: (-(d.scores.sensibility + d.scores.rationality) if d.scores else 1, d.id))


CSS = """
:root { --ink: #1f2933; --muted: #6b7785; --line: #e4e8ec; --kept: #2a9d8f; --rej: #e76f51; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.5 %FONT%; }
header { background: linear-gradient(120deg, #264653, #2a9d8f); color: #fff; padding: 28px 0 72px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header .sub { opacity: .85; font-size: 13px; }
header .models { margin-top: 10px; display: flex; gap: 8px; flex-wrap: wrap; }
header .models span { background: rgba(255,255,255,.16); border-radius: 12px; padding: 2px 10px; font-size: 12px; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
main.wrap { margin-top: -52px; padding-bottom: 40px; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 18px; }
.kpi { background: #fff; border-radius: 10px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(16,24,40,.08); }
.kpi-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.kpi-value { font-size: 26px; font-weight: 650; margin: 2px 0; }
.kpi-note { color: var(--muted); font-size: 12px; }
section { background: #fff; border-radius: 10px; padding: 18px 22px 20px; margin-bottom: 18px;
          box-shadow: 0 1px 3px rgba(16,24,40,.08); }
section h2 { margin: 0 0 4px; font-size: 18px; }
section h3 { margin: 10px 0 6px; font-size: 14px; color: var(--muted); font-weight: 600; }
.note { color: var(--muted); margin: 2px 0 10px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 22px; }
.grid3 { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 18px; }
.scroll { overflow-x: auto; }
svg.chart { display: block; max-width: 100%; height: auto; }
.legend { display: flex; gap: 16px; color: var(--muted); font-size: 12px; margin: 4px 0 6px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px;
            vertical-align: -2px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
details.dialogue { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; background: #fff; }
details.dialogue[open] { box-shadow: 0 2px 8px rgba(16,24,40,.08); }
details.dialogue summary { cursor: pointer; padding: 9px 14px; display: flex; gap: 14px; align-items: center;
                           list-style: none; }
details.dialogue summary::-webkit-details-marker { display: none; }
details.dialogue summary::before { content: "▸"; color: var(--muted); }
details.dialogue[open] summary::before { content: "▾"; }
.did { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: var(--muted); }
.topic { font-weight: 600; min-width: 230px; }
.persona { color: var(--muted); flex: 1; }
.chips { display: flex; gap: 6px; }
.chip { font-size: 12px; border-radius: 10px; padding: 1px 9px; background: #eef2f5; white-space: nowrap; }
.chip.good { background: #dcf1ee; color: #17695f; }
.chip.bad { background: #fbe3dc; color: #a4381d; }
.chip.muted, .muted { color: var(--muted); }
.body { padding: 0 16px 14px; }
.situation { margin: 4px 0 10px; }
.chat { display: flex; flex-direction: column; gap: 8px; }
.turn { max-width: 78%; }
.turn.supporter { align-self: flex-end; }
.turn .meta { font-size: 11px; color: var(--muted); margin: 0 4px 2px; }
.turn.supporter .meta { text-align: right; }
.bubble { padding: 8px 12px; border-radius: 12px; white-space: pre-wrap; }
.seeker .bubble { background: #f0f2f5; border-top-left-radius: 3px; }
.supporter .bubble { background: #dcf1ee; border-top-right-radius: 3px; }
.rationale { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px 0 28px; }
@media (max-width: 900px) {
  .kpis { grid-template-columns: repeat(2, 1fr); }
  .grid2, .grid3 { grid-template-columns: 1fr; }
}
""".replace("%FONT%", FONT)


def render_report(corpus: Corpus, stats: Mapping[str, Any] | None = None, catalog: Catalog | None = None,
                  sample_size: int = SAMPLE_DIALOGUES, seed: int = 0, generated: str | None = None) -> str:
    """The report's HTML for a read corpus; stats and catalog are computed when not given."""
    if catalog is None:
        catalog, _ = catalog_for(corpus.manifest)
    stats = stats or stats_for_corpus(corpus, catalog, None if catalog else catalog_for(corpus.manifest)[1])
    dialogues = corpus.dialogues
    judge_cfg = (corpus.manifest.config.get("judge") or {}) if corpus.manifest else {}
    thresholds = {m: judge_cfg.get(f"min_{m}") for m in SCORE_METRICS}
    scores = stats["scores"]
    prov = stats["provenance"]
    dist = stats["distributions"]
    generated = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    histograms = "".join(
        f'<div>{score_histogram_svg(m, scores["bins"], scores[m]["kept"]["histogram"], scores[m]["rejected"]["histogram"], thresholds[m])}'  # noqa: E501
        f'<p class="note">kept mean {_num(scores[m]["kept"]["mean"])} (n={scores[m]["kept"]["n"]:,}); '
        f'judge-rejected mean {_num(scores[m]["rejected"]["mean"])} (n={scores[m]["rejected"]["n"]:,})</p></div>'
        for m in SCORE_METRICS)
    epitome = _table(("EPITOME mechanism (0-2)", "mean", "min", "max"), [
        (name, _num(scores[m]["mean"]), _num(scores[m]["min"]), _num(scores[m]["max"]))
        for m, name in (("er", "emotional reactions (ER)"), ("ip", "interpretations (IP)"),
                        ("ex", "explorations (EX)"))])
    failures = (hbar_svg("failure-flags", "judge failure flags on kept dialogues", scores["failures_kept"],
                         "#e9c46a", label_width=170, total=scores["scored_kept"])
                if scores["failures_kept"] else '<p class="note">No failure flags on kept dialogues.</p>')

    trajectories = [seeker_intensities(d) for d in dialogues]
    trajectories = [t for t in trajectories if t]
    if len(trajectories) > TRAJECTORY_LINES:
        trajectories = random.Random(seed).sample(trajectories, TRAJECTORY_LINES)
    means = stats["intensity_by_turn"]
    trend = ""
    if len(means) >= 2:
        delta = means[-1]["mean"] - means[0]["mean"]
        trend = (f" Mean intensity goes from {means[0]['mean']:.1f} at the first seeker turn to "
                 f"{means[-1]['mean']:.1f} at turn {means[-1]['turn']} ({delta:+.1f}; later turns have fewer "
                 f"dialogues: n={means[-1]['n']}).")

    lengths = stats["lengths"]
    div = stats["diversity"]
    sim = div["self_similarity"]
    length_rows = [(label, _num(lengths[k]["mean"], 1), _num(lengths[k]["min"]), _num(lengths[k]["max"]))
                   for label, k in (("turns per dialogue", "turns_per_dialogue"),
                                    ("exchanges per dialogue", "exchanges_per_dialogue"),
                                    ("words per seeker turn", "words_per_seeker_turn"),
                                    ("words per supporter turn", "words_per_supporter_turn"),
                                    ("words per dialogue", "words_per_dialogue"))]
    diversity_rows = [("distinct-1, supporter turns", _num(div["distinct_1"], 3)),
                      ("distinct-2, supporter turns", _num(div["distinct_2"], 3)),
                      (f"self-similarity (mean pairwise Jaccard, {sim['sample']} dialogues)",
                       _num(sim["mean_jaccard"], 3)),
                      ("most similar pair in the sample", _num(sim["max_jaccard"], 3)),
                      ("revised supporter turns", f"{lengths['revised_supporter_turns']:,}"),
                      ("crisis dialogues", f"{lengths['crisis_dialogues']:,}")]
    usage = stats["usage"]
    def dollars(value: float | None) -> str:
        return f"${value:,.4f}" if value is not None else "n/a"

    usage_rows = [(k, f"{u['calls']:,}", f"{u['input_tokens']:,}", f"{u['output_tokens']:,}",
                   dollars(u.get("cost_usd"))) for k, u in usage["stages"].items()]
    usage_rows.append(("total", f"{usage['total']['calls']:,}", f"{usage['total']['input_tokens']:,}",
                       f"{usage['total']['output_tokens']:,}", dollars(usage.get("cost_usd"))))

    cost = (f"${usage['cost_usd']:,.4f}" if usage.get("cost_usd") is not None
            else "unknown (the config gives no price for some model that made calls)")
    sample = sample_dialogues(dialogues, sample_size, seed)
    samples_html = ("".join(_dialogue_html(d, thresholds, open_=i == 0) for i, d in enumerate(sample))
                    or '<p class="note">No kept dialogue.</p>')
    provenance_rows = [
        ("generator model", ", ".join(prov["generator_models"]) or "n/a"),
        ("judge model", ", ".join(prov["judge_models"]) or "n/a"),
        ("program versions", "; ".join(f"{k} {', '.join(v)}" for k, v in prov["program_versions"].items()) or "n/a"),
        ("config fingerprint", ", ".join(prov["config_fingerprints"]) or "n/a"),
        ("sampling seed", prov.get("seed")),
        ("package versions", ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) or "n/a"),
        ("run started / finished", f"{prov.get('created') or 'n/a'} / {prov.get('finished') or 'not finished'}"),
        ("license", prov.get("license") or "n/a"),
    ]
    models = "".join(f"<span>{_e(label)}: {_e(', '.join(v) or 'n/a')}</span>" for label, v in (
        ("generator", prov["generator_models"]), ("judge", prov["judge_models"])))
    unreadable = (f'<p class="note">{stats["unreadable_records"]} records could not be read and are left out.</p>'
                  if stats.get("unreadable_records") else "")

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>synth-empathy report: {_e(corpus.path.name or corpus.path)}</title>
<style>{CSS}</style></head>
<body>
<header><div class="wrap">
<h1>Synthetic empathetic dialogues</h1>
<div class="sub">{_e(corpus.path)} · synth-empathy {_e(prov.get("package_version") or "")} ·
report made {_e(generated)}</div>
<div class="models">{models}</div>
</div></header>
<main class="wrap">
{_kpis(stats)}
{unreadable}
<section id="scores"><h2>Judge scores</h2>
<p class="note">Whole-number bins; <span style="color:{KEPT_COLOR}">■</span> kept,
<span style="color:{REJECTED_COLOR}">■</span> rejected by the judge; the dashed line is the keep threshold.</p>
<div class="grid2">{histograms}</div>
<div class="grid2"><div>{epitome}</div><div><h3>Failure flags (kept)</h3>{failures}</div></div>
</section>
{report_section(stats.get("human_agreement"))}
<section id="rejections"><h2>Where dialogues were lost</h2>
<p class="note">{stats["counts"]["rejected"]:,} rejected of {stats["counts"]["finished"]:,} finished
(keep rate {_pct(stats["counts"]["keep_rate"])}). A rejected dialogue may give several reasons.</p>
{_rejections(stats)}
</section>
<section id="coverage"><h2>Coverage of the scenario space</h2>
{_heatmap_section(dialogues, stats, catalog)}
</section>
<section id="intensity"><h2>Seeker intensity over the conversation</h2>
<p class="note">Each faint line is one dialogue's seeker intensity (0-10) at each seeker turn
({len(trajectories):,} drawn); the bold line is the mean.{_e(trend)}</p>
{intensity_svg(trajectories, means)}
</section>
<section id="distributions"><h2>What the corpus holds</h2>
<div class="grid3">
<div><h3>Emotions</h3>{hbar_svg("dist-emotion", "emotions", dist["emotion"], label_width=100, width=350)}</div>
<div><h3>Problem types</h3>{hbar_svg("dist-problem-type", "problem types", dist["problem_type"], "#457b9d",
                                     label_width=150, width=350)}</div>
<div><h3>Supporter strategies</h3>{hbar_svg("dist-strategy", "supporter strategies", dist["strategy"], "#8e7dbe",
                                            label_width=150, width=350)}
<h3>Endings</h3>{hbar_svg("dist-ending", "endings", dist["ending"], "#e9c46a", label_width=150, width=350)}
<h3>Age bands</h3>{hbar_svg("dist-age", "persona age bands", dict(sorted(dist["age_band"].items())), "#f4a261",
                            label_width=150, width=350)}
<p class="note">{len(dist["persona"]):,} distinct personas.</p></div>
</div>
</section>
<section id="lengths"><h2>Turns, lengths and diversity</h2>
<div class="grid2"><div>{_table(("per", "mean", "min", "max"), length_rows)}</div>
<div>{_table(("measure", "value"), diversity_rows)}</div></div>
</section>
<section id="samples"><h2>Sample dialogues</h2>
<p class="note">{len(sample)} of {len(dialogues):,} kept dialogues (seeded sample, best judged first);
the first is open; click any to read it.</p>
{samples_html}
</section>
<section id="provenance"><h2>Provenance, tokens and cost</h2>
<div class="grid2"><div>{_table(("field", "value"), provenance_rows)}</div>
<div>{_table(("stage", "calls", "input tokens", "output tokens", "cost"), usage_rows)}
<p class="note">Cost: {cost}.
Synthetic data, not clinical advice.</p></div></div>
</section>
</main>
<footer>Made by synth-empathy. Self-contained: this file loads nothing from the network.</footer>
</body></html>
"""


def write_report(corpus_dir: Path, out: Path, *, sample_size: int = SAMPLE_DIALOGUES, seed: int = 0) -> Path:
    """Read DIR and write the HTML report to `out` (UserError for a missing corpus or an `out` that is a folder)."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as report.html")
    if sample_size < 0:
        raise UserError(f"--sample must be 0 or more, not {sample_size}")
    corpus = read_corpus(Path(corpus_dir))
    page = render_report(corpus, sample_size=sample_size, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
