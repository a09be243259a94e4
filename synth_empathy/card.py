"""The data card (README.md of an output directory): what the data is, where it came from, what it holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from synth_empathy.corpus import CARD, KEPT, iter_jsonl
from synth_empathy.schema import Manifest


def _table(counter: Counter[str], header: str, limit: int = 40) -> str:
    if not counter:
        return "_none_\n"
    rows = [f"| {header} | count |", "| --- | ---: |"]
    rows += [f"| {k} | {v} |" for k, v in counter.most_common(limit)]
    return "\n".join(rows) + "\n"


def _mean(xs: list[float]) -> str:
    return f"{sum(xs) / len(xs):.2f}" if xs else "n/a"


def render_card(out_dir: Path, manifest: Manifest) -> str:
    emotions: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    strategies: Counter[str] = Counter()
    endings: Counter[str] = Counter()
    sens: list[float] = []
    rat: list[float] = []
    path = Path(out_dir) / KEPT
    for d in iter_jsonl(path) if path.exists() else []:
        emotions[d["seed"]["emotion"]] += 1
        problems[d["seed"]["problem_type"]] += 1
        endings[d["ending"]] += 1
        strategies.update(t["strategy"] for t in d["turns"] if t["role"] == "supporter")
        if d.get("scores"):
            sens.append(d["scores"]["sensibility"])
            rat.append(d["scores"]["rationality"])
    kept, rejected = manifest.counts.get("kept", 0), manifest.counts.get("rejected", 0)
    keep_rate = f"{kept / (kept + rejected):.0%}" if kept + rejected else "n/a"
    tokens = sum(u.input_tokens + u.output_tokens for u in manifest.usage.values())
    cfg = manifest.config
    return f"""---
license: {cfg.get("license", "unknown")}
task_categories: [text-generation]
tags: [synthetic, empathy, emotional-support, dialogue]
---
# Synthetic empathetic dialogues

Made by synth-empathy {manifest.package_version}: persona and scenario graphs were sampled into seeds,
a help-seeker agent and a supporter agent role-played each seed, the supporter drafted, critiqued and
revised its replies, and every dialogue passed rule checks, near-duplicate removal and an LLM judge
(sensibility and rationality, 0-10) before it was kept.

**Intended use:** training and evaluating models on supportive, empathetic conversation.
**Not clinical advice.** These conversations are synthetic; no real person's story is in them, and they
are no substitute for professional help. They inherit the biases and errors of the generator and the judge;
a small local model writes weak dialogues, and its judge scores are noisy.

## Provenance

| field | value |
| --- | --- |
| generator model | {manifest.models.get("generator")} |
| judge model | {manifest.models.get("judge")} |
| config fingerprint | `{manifest.config_fingerprint}` |
| seed | {cfg.get("seed")} |
| created | {manifest.created} |
| finished | {manifest.finished or "not finished (resume to complete)"} |
| versions | {", ".join(f"{k} {v}" for k, v in manifest.versions.items())} |
| license | {cfg.get("license")} |

## Counts

| planned | kept | rejected | keep rate | mean sensibility | mean rationality | tokens |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| {manifest.counts.get("planned", 0)} | {kept} | {rejected} | {keep_rate} | {_mean(sens)} | {_mean(rat)} | {tokens} |

### Rejection reasons

{_table(Counter(manifest.rejection_reasons), "reason")}
### Emotions (kept)

{_table(emotions, "emotion")}
### Problem types (kept)

{_table(problems, "problem type")}
### Supporter strategies (kept)

{_table(strategies, "strategy")}
### Endings (kept)

{_table(endings, "ending")}
## Files

- `dialogues.jsonl`: kept dialogues, one JSON object a line (id, seed, turns, ending, scores, provenance).
- `rejected.jsonl`: every seed that was not kept, with its stage, reason codes and the dialogue when there was one.
- `manifest.json`: the full config, versions, models, counts, token usage and timings.
"""


def write_card(out_dir: Path, manifest: Manifest) -> None:
    (Path(out_dir) / CARD).write_text(render_card(out_dir, manifest), encoding="utf-8")
