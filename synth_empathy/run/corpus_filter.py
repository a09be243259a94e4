"""The filter command's runner: rules -> dedup -> judge over an existing corpus (ours or an imported dataset),
the Efficient-Empathy select split and the threshold sweep."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.corpus.importers import source_entry
from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.manifest import build_manifest, now, write_manifest
from synth_empathy.corpus.outputs import check_outputs
from synth_empathy.corpus.read import report_bad_rows
from synth_empathy.corpus.records import import_records, need_dialogues
from synth_empathy.corpus.store import KEPT_FILE, CorpusWriter, Tally
from synth_empathy.errors import UserError
from synth_empathy.filters.dedup import dedup_dialogues
from synth_empathy.filters.judge import meets_thresholds, scored
from synth_empathy.filters.pii import corpus_pii
from synth_empathy.filters.rules import rules_rejection
from synth_empathy.lm import PlainAdapter, UsageMeter, build_lm, model_label
from synth_empathy.lm.batch import BATCH_FILE, batch_price
from synth_empathy.lm.usage import metering, price_for, with_earlier_usage
from synth_empathy.programs import load_programs
from synth_empathy.programs.judge import Judge
from synth_empathy.publish.card import write_card
from synth_empathy.run.batch_judge import judge_by_batch
from synth_empathy.run.outside import write_outside
from synth_empathy.run.workers import Outcome, Workers
from synth_empathy.schema import Dialogue, Manifest, Rejection, Scores

# An outside dataset's own records, next to our layout: kept and rejected as the input held them (the
# input's suffix), and one {id, record, kept, stage, reasons, scores} line per record keyed by its own id.
SOURCE_KEPT, SOURCE_REJECTED, SOURCE_OUTCOMES = "source_kept", "source_rejected", "source_outcomes.jsonl"


def _split(outcomes: Iterable[Outcome]) -> tuple[list[Dialogue], list[Rejection]]:
    outcomes = list(outcomes)
    return ([o for o in outcomes if isinstance(o, Dialogue)], [o for o in outcomes if isinstance(o, Rejection)])


def apply_rules(dialogues: Iterable[Dialogue], config: RunConfig) -> tuple[list[Dialogue], list[Rejection]]:
    return _split(rules_rejection(d, config.rules) or d for d in dialogues)


def judge_all(dialogues: list[Dialogue], config: RunConfig, judge_lm: dspy.LM | None = None,
              judge: Judge | None = None, meter: UsageMeter | None = None,
              on_done: Callable[[int], None] | None = None) -> list[Outcome]:
    """Score every dialogue (bounded concurrency); a judge failure is a rejection, never a pass. The judge LM
    is the config's judge model unless one is given; the judge program the config's (`programs_dir`)."""
    judge_lm = judge_lm or build_lm(config.judge_model())
    judge = judge or load_programs(programs_dir=config.programs_dir).judge
    adapter = PlainAdapter()

    def one(d: Dialogue) -> Outcome:
        with metering(meter), dspy.context(lm=judge_lm, adapter=adapter):
            return scored(d, judge, config.judge.samples)

    done = itertools.count()

    def counted(d: Dialogue) -> Outcome:
        outcome = one(d)
        if on_done:
            on_done(next(done))
        return outcome

    with Workers(counted, config.concurrency, name="judge") as pool:
        return pool.map(dialogues)


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


def run_filter(config: RunConfig, source: Path, out_dir: Path, judge_lm: dspy.LM | None = None,
               judge_label: str | None = None, select: float | None = None,
               on_done: Callable[[int], None] | None = None, batch: bool = False,
               batch_poll_s: float = 30.0, source_license: str = "unknown") -> tuple[Manifest, dict]:
    """rules -> dedup (keeper: higher scored) -> judge over a corpus; writes the same layout as `generate`,
    into a new or empty folder that it holds the one-writer lock on. The judge LM is the config's judge model
    unless one is given. `batch` sends the judge's calls through the Batch API (run.batch_judge; resumable from
    OUT/batch.json, the one file a rerun may find there). An imported corpus is recorded in the manifest and
    the card as a source under `source_license`."""
    out_dir = Path(out_dir)
    check_outputs([out_dir], [Path(source)])
    with output_lock(out_dir, folder=True):
        if any(p.name not in (LOCK, BATCH_FILE) for p in out_dir.iterdir()):
            what = "a corpus" if (out_dir / KEPT_FILE).exists() else "files this command did not write"
            raise UserError(f"--out {out_dir} already holds {what}; choose an empty folder")
        return _filter_locked(config, Path(source), out_dir, judge_lm, judge_label, select, on_done, batch,
                              batch_poll_s, source_license)


def _filter_locked(config: RunConfig, source: Path, out_dir: Path, judge_lm: dspy.LM | None, judge_label: str | None,
                   select: float | None, on_done: Callable[[int], None] | None, batch: bool,
                   batch_poll_s: float, source_license: str = "unknown") -> tuple[Manifest, dict]:
    judge_config = config.judge_model()
    judge_label = judge_label or model_label(judge_config)
    started, created = time.perf_counter(), now()
    # An imported corpus is in the run's language; a mixed setting names no one language, so it is read as English.
    language = config.run.language if isinstance(config.run.language, str) else "en"
    records, dialogues = import_records(source, language=language)
    report_bad_rows(source, records.bad_rows, out_dir / "bad_rows.jsonl")
    need_dialogues(records, len(dialogues))
    # Our own records name the catalog; an imported file's name its format, and the file is a source to credit.
    fmt = dialogues[0].seed.source
    sources = [] if fmt == "catalog" else [source_entry(source, fmt, source_license)]
    meter = UsageMeter()
    passed, rejected = apply_rules(dialogues, config)
    if config.dedup.enabled:
        passed, duplicates = dedup_dialogues(passed, config.dedup)
        rejected += duplicates
    if batch:
        judged = judge_by_batch(passed, config, out_dir / BATCH_FILE, meter=meter, poll_s=batch_poll_s)
    else:
        judged = judge_all(passed, config, judge_lm, meter=meter, on_done=on_done)
    kept, low = keep_by_scores(judged, config)
    rejected += low
    writer = CorpusWriter(out_dir)
    for d in kept:
        writer.keep(d)
    for r in rejected:
        writer.reject(r)
    writer.close()
    if records.fmt != "synth":  # an outside dataset: its own records back, beside our layout
        write_outside(records, kept, rejected, out_dir / f"{SOURCE_KEPT}{records.suffix}", out_dir / SOURCE_OUTCOMES,
                      out_dir / f"{SOURCE_REJECTED}{records.suffix}")
    scores = [(o, o.scores) for o in judged if isinstance(o, Dialogue)]
    sweep = threshold_sweep(scores)
    if select is not None:
        for name, part in efficient_empathy_split([d for d, _ in scores], select).items():
            path = out_dir / "select" / f"{name}.jsonl"
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(d.model_dump_json(exclude_none=True) + "\n" for d in part), encoding="utf-8")
    tally = Tally()
    for outcome in (*kept, *rejected):
        tally.add(outcome)
    price = price_for(config.prices, judge_config, model_label(judge_config))
    prices = {"judge": batch_price(price) if batch and price else price}
    manifest = build_manifest(config, models={"generator": f"source:{source}", "judge": judge_label},
                              planned=len(dialogues), tally=tally,
                              usage=with_earlier_usage(meter.snapshot(), {}, prices),
                              timings={"filter_s": round(time.perf_counter() - started, 2)}, created=created,
                              finished=now(), pii=corpus_pii(kept), sources=sources)
    write_manifest(out_dir, manifest)
    write_card(out_dir, manifest)
    return manifest, sweep
