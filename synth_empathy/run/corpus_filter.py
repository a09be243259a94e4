"""Filters over an existing corpus (ours or an imported dataset): rules -> dedup -> judge, select, sweep."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.corpus.importers import read_dataset
from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.outputs import check_outputs
from synth_empathy.corpus.store import CorpusWriter, write_manifest
from synth_empathy.errors import UserError
from synth_empathy.filters.dedup import dedup_dialogues
from synth_empathy.filters.judge import meets_thresholds, scored
from synth_empathy.filters.rules import rules_rejection
from synth_empathy.lm import PlainAdapter, UsageMeter
from synth_empathy.lm.usage import metering
from synth_empathy.programs.judge import Judge
from synth_empathy.schema import Dialogue, Manifest, Rejection, Scores

Outcome = Dialogue | Rejection


def load_dialogues(path: Path, bad_rows_to: Path | None = None) -> list[Dialogue]:
    """Dialogues from our JSONL or any importable dataset. Bad rows are written to `bad_rows_to` and
    counted on stderr, never silently dropped."""
    result = read_dataset(Path(path))
    if result.bad_rows:
        where = ""
        if bad_rows_to is not None:
            bad_rows_to.parent.mkdir(parents=True, exist_ok=True)
            bad_rows_to.write_text("".join(json.dumps({"location": b.location, "reason": b.reason}) + "\n"
                                           for b in result.bad_rows), encoding="utf-8")
            where = f" (listed in {bad_rows_to})"
        print(f"{path}: skipped {len(result.bad_rows)} bad row(s){where}", file=sys.stderr)
    if not result.dialogues:
        raise UserError(f"{path} holds no dialogues (format {result.fmt})")
    return result.dialogues


def _split(outcomes: Iterable[Outcome]) -> tuple[list[Dialogue], list[Rejection]]:
    outcomes = list(outcomes)
    return ([o for o in outcomes if isinstance(o, Dialogue)], [o for o in outcomes if isinstance(o, Rejection)])


def apply_rules(dialogues: Iterable[Dialogue], config: RunConfig) -> tuple[list[Dialogue], list[Rejection]]:
    return _split(rules_rejection(d, config.rules) or d for d in dialogues)


def judge_all(dialogues: list[Dialogue], config: RunConfig, judge_lm: dspy.LM, judge: Judge | None = None,
              meter: UsageMeter | None = None, on_done: Callable[[int], None] | None = None) -> list[Outcome]:
    """Score every dialogue (bounded concurrency); a judge failure is a rejection, never a pass."""
    judge = judge or Judge()
    adapter = PlainAdapter()

    def one(d: Dialogue) -> Outcome:
        with metering(meter), dspy.context(lm=judge_lm, adapter=adapter):
            return scored(d, judge, config.judge.samples)

    out: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
        for i, outcome in enumerate(pool.map(one, dialogues)):
            out.append(outcome)
            if on_done:
                on_done(i)
    return out


def keep_by_scores(outcomes: list[Outcome], config: RunConfig) -> tuple[list[Dialogue], list[Rejection]]:
    return _split(meets_thresholds(o, config.judge) if isinstance(o, Dialogue) else o for o in outcomes)


def efficient_empathy_split(dialogues: list[Dialogue], threshold: float) -> dict[str, list[Dialogue]]:
    """Sun et al. 2024: the sensibility set (sensibility > T), the rationality set (rationality > T), and the rest.
    The two sets may overlap; the inequalities are strict, as in the paper."""
    sens = [d for d in dialogues if d.scores and d.scores.sensibility > threshold]
    rat = [d for d in dialogues if d.scores and d.scores.rationality > threshold]
    chosen = {d.id for d in sens} | {d.id for d in rat}
    return {"sensibility": sens, "rationality": rat, "discard": [d for d in dialogues if d.id not in chosen]}


def threshold_sweep(scores: list[tuple[Dialogue, Scores]]) -> dict:
    """How many dialogues each (min sensibility, min rationality) pair keeps, overall and per emotion/problem."""
    grid = {s: {r: sum(sc.sensibility >= s and sc.rationality >= r for _, sc in scores) for r in range(11)}
            for s in range(11)}
    by: dict[str, dict[str, dict[int, int]]] = {"emotion": {}, "problem_type": {}}
    for key, attr in (("emotion", "emotion"), ("problem_type", "problem_type")):
        groups = Counter(getattr(d.seed, attr) for d, _ in scores)
        for value in sorted(groups):
            by[key][value] = {t: sum(getattr(d.seed, attr) == value and sc.sensibility >= t and sc.rationality >= t
                                     for d, sc in scores) for t in range(11)}
    return {"total": len(scores), "grid": grid, **by}


def format_sweep(sweep: dict) -> str:
    lines = [f"dialogues judged: {sweep['total']}; kept when sensibility >= row and rationality >= column", "",
             "sens\\rat " + " ".join(f"{r:>5}" for r in range(11))]
    lines += [f"{s:>8} " + " ".join(f"{sweep['grid'][s][r]:>5}" for r in range(11)) for s in range(11)]
    for key in ("emotion", "problem_type"):
        lines += ["", f"kept by {key.replace('_', ' ')} when both scores >= T", f"{'':<24}" + " ".join(
            f"T={t:<3}" for t in range(4, 10))]
        lines += [f"{value:<24}" + " ".join(f"{row[t]:<5}" for t in range(4, 10))
                  for value, row in sweep[key].items()]
    return "\n".join(lines)


def run_filter(config: RunConfig, source: Path, out_dir: Path, judge_lm: dspy.LM, judge_label: str,
               select: float | None = None, on_done: Callable[[int], None] | None = None) -> tuple[Manifest, dict]:
    """rules -> dedup (keeper: higher scored) -> judge over a corpus; writes the same layout as `generate`,
    into a new or empty folder that it holds the one-writer lock on."""
    out_dir = Path(out_dir)
    check_outputs([out_dir], [Path(source)])
    with output_lock(out_dir, folder=True):
        if any(p.name != LOCK for p in out_dir.iterdir()):
            what = "a corpus" if (out_dir / "dialogues.jsonl").exists() else "files this command did not write"
            raise UserError(f"--out {out_dir} already holds {what}; choose an empty folder")
        return _filter_locked(config, Path(source), out_dir, judge_lm, judge_label, select, on_done)


def _filter_locked(config: RunConfig, source: Path, out_dir: Path, judge_lm: dspy.LM, judge_label: str,
                   select: float | None, on_done: Callable[[int], None] | None) -> tuple[Manifest, dict]:
    from synth_empathy.publish.card import write_card
    from synth_empathy.run.generate import _now, _versions, package_version

    started = time.perf_counter()
    dialogues = load_dialogues(source, bad_rows_to=out_dir / "bad_rows.jsonl")
    meter = UsageMeter()
    passed, rejected = apply_rules(dialogues, config)
    if config.dedup.enabled:
        passed, duplicates = dedup_dialogues(passed, config.dedup)
        rejected += duplicates
    judged = judge_all(passed, config, judge_lm, meter=meter, on_done=on_done)
    kept, low = keep_by_scores(judged, config)
    rejected += low
    writer = CorpusWriter(out_dir)
    for d in kept:
        writer.keep(d)
    for r in rejected:
        writer.reject(r)
    writer.close()
    scores = [(o, o.scores) for o in judged if isinstance(o, Dialogue)]
    sweep = threshold_sweep(scores)
    if select is not None:
        for name, part in efficient_empathy_split([d for d, _ in scores], select).items():
            path = out_dir / "select" / f"{name}.jsonl"
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(d.model_dump_json(exclude_none=True) + "\n" for d in part), encoding="utf-8")
    reasons = Counter(reason for r in rejected for reason in r.reasons)
    manifest = Manifest(
        package_version=package_version(), config=config.public_dict(), config_fingerprint=config.fingerprint(),
        versions=_versions(), models={"generator": f"source:{source}", "judge": judge_label},
        counts={"planned": len(dialogues), "kept": len(kept), "rejected": len(rejected)},
        rejection_reasons=dict(sorted(reasons.items())), usage=meter.snapshot(),
        timings={"filter_s": round(time.perf_counter() - started, 2)}, created=_now(), finished=_now(),
    )
    write_manifest(out_dir, manifest)
    write_card(out_dir, manifest)
    return manifest, sweep
