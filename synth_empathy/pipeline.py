"""Orchestration: plan seeds -> role-play (bounded concurrency) -> rules -> dedup -> judge -> write; resume."""

from __future__ import annotations

import platform
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import dspy

from synth_empathy.card import write_card
from synth_empathy.config import ModelConfig, RunConfig
from synth_empathy.corpus import CorpusWriter, read_manifest, write_manifest
from synth_empathy.errors import RunError, UserError
from synth_empathy.filters.dedup import DedupIndex, dialogue_text
from synth_empathy.filters.judge import judge_reasons, score_dialogue
from synth_empathy.filters.rules import rule_violations
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_seeds
from synth_empathy.lm import PlainAdapter, UsageMeter, build_lm, model_label
from synth_empathy.lm.usage import metering
from synth_empathy.programs import Programs, load_programs
from synth_empathy.roleplay import roleplay
from synth_empathy.schema import Dialogue, Manifest, Provenance, Rejection, Seed

Outcome = Dialogue | Rejection


def package_version() -> str:
    try:
        return version("synth-empathy")
    except PackageNotFoundError:
        return "0+unknown"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("synth-empathy", "dspy", "llama_cpp_python", "datasketch", "networkx", "pydantic", "openai"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def judge_model_config(config: RunConfig) -> ModelConfig:
    """The judge's model: its own when named, else the generator's, at the judge's temperature."""
    update: dict = {"temperature": config.judge.temperature, "max_tokens": max(config.model.max_tokens, 200)}
    if config.judge.backend:
        update["backend"] = config.judge.backend
    if config.judge.model:
        update["model"] = config.judge.model
    return config.model.model_copy(update=update)


class Run:
    """One generate run into one output directory; thread-safe where workers meet (dedup index, writer)."""

    def __init__(self, config: RunConfig, out_dir: Path, programs: Programs | None = None,
                 generator_lm: dspy.LM | None = None, judge_lm: dspy.LM | None = None) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.catalog = load_catalog(config.personas_dir, config.scenarios_dir)
        self.generator_lm = generator_lm or build_lm(config.model)
        self.judge_lm = judge_lm or build_lm(judge_model_config(config))
        self.programs = programs or load_programs(config.dialogue.critique_rounds, config.programs_dir)
        self.adapter = PlainAdapter()
        self.meter = UsageMeter()
        self.index = DedupIndex(config.dedup)
        self._index_lock = threading.Lock()
        self.fingerprint = config.fingerprint()
        self.provenance = dict(
            generator_model=model_label(config.model),
            judge_model=model_label(judge_model_config(config)),
            program_versions=self.programs.versions(),
            config_fingerprint=self.fingerprint,
            package_version=package_version(),
        )

    # -- one seed ---------------------------------------------------------------------------

    def make(self, seed: Seed) -> Outcome:
        """Turn one seed into a kept dialogue or a rejection; never into a placeholder."""
        with metering(self.meter), dspy.context(lm=self.generator_lm, adapter=self.adapter):
            try:
                conv = roleplay(seed, self.programs.seeker, self.programs.supporter, self.config.dialogue)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded rejection
                return Rejection(id=seed.id, stage="generate", reasons=["generation_failed"],
                                 detail=f"{type(exc).__name__}: {exc}"[:500], seed=seed)
        dialogue = Dialogue(id=seed.id, seed=seed, turns=conv.turns, ending=conv.ending, crisis=conv.crisis,
                            provenance=Provenance(created=_now(), **self.provenance))
        return self.filter(dialogue)

    def filter(self, dialogue: Dialogue) -> Outcome:
        """Rules, then a dedup check against what is kept, then the judge; the dialogue is kept in every rejection."""
        if self.config.rules.enabled:
            violations = rule_violations(dialogue, self.config.rules)
            if violations:
                return Rejection(id=dialogue.id, stage="rules", reasons=violations, seed=dialogue.seed,
                                 dialogue=dialogue)
        duplicate = self._duplicate_of(dialogue)
        if duplicate:
            return duplicate
        with metering(self.meter), dspy.context(lm=self.judge_lm, adapter=self.adapter):
            try:
                scores = score_dialogue(dialogue, self.programs.judge, self.config.judge.samples)
            except Exception as exc:  # noqa: BLE001
                return Rejection(id=dialogue.id, stage="judge", reasons=["judge_failed"],
                                 detail=f"{type(exc).__name__}: {exc}"[:500], seed=dialogue.seed, dialogue=dialogue)
        dialogue = dialogue.model_copy(update={"scores": scores})
        reasons = judge_reasons(scores, self.config.judge)
        if reasons:
            return Rejection(id=dialogue.id, stage="judge", reasons=reasons, seed=dialogue.seed, dialogue=dialogue,
                             detail=scores.rationale)
        # Check again and insert under one lock: two near-duplicates judged at once must not both be kept.
        return self._duplicate_of(dialogue, insert=True) or dialogue

    def _duplicate_of(self, dialogue: Dialogue, insert: bool = False) -> Rejection | None:
        if not self.config.dedup.enabled:
            return None
        text = dialogue_text(dialogue, self.config.dedup.scope)
        with self._index_lock:
            match = self.index.query(text)
            if match is None:
                if insert:
                    self.index.add(dialogue.id, text)
                return None
        kind = "exact_duplicate" if match.kind == "exact" else "near_duplicate"
        return Rejection(id=dialogue.id, stage="dedup", reasons=[kind], seed=dialogue.seed, dialogue=dialogue,
                         detail=f"duplicates {match.kept_id} (Jaccard {match.jaccard:.2f})")


def _prepare_out_dir(out_dir: Path, config: RunConfig, resume: bool) -> Manifest | None:
    previous = read_manifest(out_dir)
    if previous is None:
        if resume:
            raise UserError(f"--resume: {out_dir} holds no earlier run to resume")
        if out_dir.exists() and any(out_dir.iterdir()):
            raise UserError(f"--out {out_dir} is not empty and holds no synth-empathy run; choose an empty folder")
        return None
    if previous.config_fingerprint != config.fingerprint():
        raise UserError(
            f"--out {out_dir} holds a run with a different config (fingerprint {previous.config_fingerprint}, "
            f"this one {config.fingerprint()}); use another --out or the same settings"
        )
    return previous


def run_generate(config: RunConfig, out_dir: Path, resume: bool = False,
                 on_outcome: Callable[[Outcome], None] | None = None, **run_parts) -> Manifest:
    """The whole pipeline; rerunning into the same folder continues where the last run stopped.

    `run_parts` go to `Run`: programs, generator_lm, judge_lm (plug-in points and test doubles)."""
    out_dir = Path(out_dir)
    previous = _prepare_out_dir(out_dir, config, resume)
    started = time.perf_counter()
    run = Run(config, out_dir, **run_parts)
    seeds = plan_seeds(run.catalog, config.n, config.seed)
    writer = CorpusWriter(out_dir)
    done = writer.done_ids()
    for d in _kept_dialogues(out_dir):
        run.index.add(d.id, dialogue_text(d, config.dedup.scope))
    pending = [s for s in seeds if s.id not in done]
    counts: Counter[str] = Counter()
    manifest = _manifest(run, previous, counts, {}, 0.0)
    write_manifest(out_dir, manifest)

    first_error: list[str] = []

    def record(outcome: Outcome) -> None:
        if isinstance(outcome, Rejection) and outcome.stage == "generate" and not first_error:
            first_error.append(outcome.detail)
        if isinstance(outcome, Dialogue):
            writer.keep(outcome)
            counts["kept"] += 1
        else:
            writer.reject(outcome)
            counts["rejected"] += 1
            for reason in outcome.reasons:
                counts[f"reason:{reason}"] += 1
        if on_outcome:
            on_outcome(outcome)

    interrupted = False
    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="dialogue")
    try:
        futures: set[Future] = set()
        queue = list(pending)
        while queue or futures:
            while queue and len(futures) < config.concurrency:
                futures.add(pool.submit(run.make, queue.pop(0)))
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future.result())
    except KeyboardInterrupt:
        interrupted = True
        for future in futures:
            future.cancel()
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        writer.close()
        elapsed = time.perf_counter() - started
        manifest = _manifest(run, previous, counts, {"generate_s": round(elapsed, 2)}, elapsed,
                             finished=not interrupted)
        write_manifest(out_dir, manifest)
        write_card(out_dir, manifest)
    if interrupted:
        raise KeyboardInterrupt
    failed = counts["reason:generation_failed"]
    if pending and failed == len(pending):
        raise RunError(f"all {failed} dialogues of this run failed to generate (see {out_dir / 'rejected.jsonl'}); "
                       f"first error: {first_error[0]}")
    return manifest


def _kept_dialogues(out_dir: Path) -> list[Dialogue]:
    from synth_empathy.corpus import KEPT, read_dialogues

    path = out_dir / KEPT
    return read_dialogues(path) if path.exists() and path.stat().st_size else []


def _manifest(run: Run, previous: Manifest | None, counts: Counter[str], timings: dict[str, float],
              elapsed: float, finished: bool = False) -> Manifest:
    from synth_empathy.corpus import KEPT, REJECTED, iter_jsonl

    kept = sum(1 for _ in iter_jsonl(run.out_dir / KEPT)) if (run.out_dir / KEPT).exists() else 0
    reasons: Counter[str] = Counter()
    rejected = 0
    if (run.out_dir / REJECTED).exists():
        for r in iter_jsonl(run.out_dir / REJECTED):
            rejected += 1
            reasons.update(r.get("reasons", []))
    usage = run.meter.snapshot()
    if previous:  # a resumed run adds to what the earlier runs spent
        for stage, used in previous.usage.items():
            mine = usage.setdefault(stage, type(used)())
            mine.calls += used.calls
            mine.input_tokens += used.input_tokens
            mine.output_tokens += used.output_tokens
        timings = {k: round(v + previous.timings.get(k, 0.0), 2) for k, v in timings.items()}
    return Manifest(
        package_version=run.provenance["package_version"],
        config=run.config.public_dict(),
        config_fingerprint=run.fingerprint,
        versions=_versions(),
        models={"generator": run.provenance["generator_model"], "judge": run.provenance["judge_model"]},
        counts={"planned": run.config.n, "kept": kept, "rejected": rejected, "this_run": sum(
            counts[k] for k in ("kept", "rejected"))},
        rejection_reasons=dict(sorted(reasons.items())),
        usage=usage,
        timings=timings,
        created=previous.created if previous else _now(),
        finished=_now() if finished else None,
    )
