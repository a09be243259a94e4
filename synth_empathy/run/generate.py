"""Orchestration: plan seeds -> role-play (bounded concurrency) -> rules -> dedup -> judge -> write; resume.

Dialogues run on worker threads, one dialogue a thread, its turns in order; every LM call goes through
the LM layer's ResilientEngine (limiter, retries). Threads, not asyncio: measured against a bare async
client they keep the endpoint as busy (BENCHMARKS.md), and the programs stay plain synchronous DSPy.
Only the calling thread writes records, so each planned seed ends as exactly one line in
dialogues.jsonl or rejected.jsonl, and a stop never tears one.
"""

from __future__ import annotations

import contextlib
import platform
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import dspy

from synth_empathy.config import ModelConfig, Price, RunConfig
from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.store import (
    KEPT,
    MANIFEST,
    CorpusWriter,
    RecordTally,
    read_dialogues,
    read_manifest,
    tally_records,
    write_manifest,
)
from synth_empathy.errors import RunError, UserError, error_detail
from synth_empathy.filters.dedup import DedupIndex, dialogue_text
from synth_empathy.filters.judge import judge_verdict
from synth_empathy.filters.rules import rules_rejection
from synth_empathy.graphs.catalog import Catalog, load_catalog
from synth_empathy.graphs.sampler import plan_for
from synth_empathy.lm import AdaptiveLimiter, Cancelled, PlainAdapter, UsageMeter, build_lm, model_label
from synth_empathy.lm.usage import cost_usd, metering
from synth_empathy.programs import Programs, load_programs
from synth_empathy.publish.card import write_card
from synth_empathy.run.progress import Progress
from synth_empathy.run.roleplay import roleplay
from synth_empathy.schema import Dialogue, Manifest, Provenance, Rejection, Seed, StageUsage

Outcome = Dialogue | Rejection
# A user filter: None keeps the dialogue; a reason code (str) or a Rejection drops it.
DialogueFilter = Callable[[Dialogue], "Rejection | str | None"]

CHECKPOINT_S = 30.0  # the manifest (counts, usage) is rewritten at least this often during a run
GENERATOR_STAGES = ("seeker", "supporter", "critique", "revise")


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


def _endpoint(config: ModelConfig) -> tuple[str, str | None]:
    # LMs that call one endpoint share its rate limit, whatever model they name.
    return (config.backend, config.api_base) if config.backend == "openai" else (config.backend, config.model)


class Run:
    """One generate run into one output directory; thread-safe where workers meet (dedup index, meter)."""

    def __init__(self, config: RunConfig, out_dir: Path, programs: Programs | None = None,
                 generator_lm: dspy.LM | None = None, judge_lm: dspy.LM | None = None,
                 catalog: Catalog | None = None, filters: Sequence[DialogueFilter] = (),
                 defer_dedup: bool = False) -> None:
        self.config = config
        # True where dialogues are made away from the recording process (a Ray actor): the dedup check
        # against what is kept then happens only where outcomes are recorded, in `admit`.
        self.defer_dedup = defer_dedup
        self.out_dir = Path(out_dir)
        self.catalog = catalog or load_catalog(config.personas_dir, config.scenarios_dir)
        self.filters = list(filters)
        self.limiters: dict[tuple[str, str | None], AdaptiveLimiter] = {}
        judge_config = judge_model_config(config)
        self.generator_lm = generator_lm or build_lm(config.model, limiter=self._limiter(config.model))
        self.judge_lm = judge_lm or build_lm(judge_config, limiter=self._limiter(judge_config))
        self.programs = programs or load_programs(config.dialogue.critique_rounds, config.programs_dir)
        self.adapter = PlainAdapter()
        # DSPy keeps every call's prompt and response in the LM's, the modules' and a global history, and every
        # prediction with its inputs in a global trace (for optimizers): up to 10,000 entries each, memory that
        # grows with n. Both off for the run's calls unless config.run.lm_history asks for them.
        self.dspy_settings = {} if config.run.lm_history else {"disable_history": True, "max_trace_size": 0}
        self.meter = UsageMeter()
        self.index = DedupIndex(config.dedup)
        self._index_lock = threading.Lock()
        self.fingerprint = config.fingerprint()
        self.created = _now()
        self.prices = {stage: _price(config, config.model) for stage in GENERATOR_STAGES}
        self.prices["judge"] = _price(config, judge_config)
        self.provenance = dict(
            generator_model=model_label(config.model),
            judge_model=model_label(judge_config),
            program_versions=self.programs.versions(),
            config_fingerprint=self.fingerprint,
            package_version=package_version(),
        )

    def _limiter(self, config: ModelConfig) -> AdaptiveLimiter:
        # One dialogue has at most one call in flight, so `concurrency` is also the ceiling on calls.
        return self.limiters.setdefault(_endpoint(config), AdaptiveLimiter(self.config.concurrency))

    def cancel(self) -> None:
        """Abandon every call that waits for a slot or a back-off; calls already on the wire finish unheard."""
        for limiter in self.limiters.values():
            limiter.cancel()

    # -- one seed ---------------------------------------------------------------------------

    def make(self, seed: Seed) -> Outcome:
        """Turn one seed into a kept dialogue or a rejection; never into a placeholder."""
        with metering(self.meter), dspy.context(lm=self.generator_lm, adapter=self.adapter, **self.dspy_settings):
            try:
                conv = roleplay(seed, self.programs.seeker, self.programs.supporter, self.config.dialogue)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded rejection
                return Rejection(id=seed.id, stage="generate", reasons=["generation_failed"],
                                 detail=error_detail(exc), seed=seed)
        dialogue = Dialogue(id=seed.id, seed=seed, turns=conv.turns, ending=conv.ending, crisis=conv.crisis,
                            provenance=Provenance(created=_now(), **self.provenance))
        return self.filter(dialogue)

    def filter(self, dialogue: Dialogue) -> Outcome:
        """Rules, then a dedup check against what is kept, then the judge; the dialogue is kept in every rejection."""
        rejected = rules_rejection(dialogue, self.config.rules)
        if rejected:
            return rejected
        for custom in self.filters:
            verdict = custom(dialogue)
            if isinstance(verdict, str):
                verdict = Rejection(id=dialogue.id, stage="custom", reasons=[verdict], seed=dialogue.seed,
                                    dialogue=dialogue, detail=getattr(custom, "__name__", ""))
            if verdict is not None:
                return verdict
        duplicate = self._duplicate_of(dialogue)
        if duplicate:
            return duplicate
        with metering(self.meter), dspy.context(lm=self.judge_lm, adapter=self.adapter, **self.dspy_settings):
            verdict = judge_verdict(dialogue, self.programs.judge, self.config.judge)
        if isinstance(verdict, Rejection):
            return verdict
        dialogue = verdict
        # Check again and insert under one lock: two near-duplicates judged at once must not both be kept.
        return self._duplicate_of(dialogue, insert=True) or dialogue

    def admit(self, outcome: Outcome) -> Outcome:
        """The recording side's last word on an outcome made elsewhere: a kept dialogue must not duplicate
        anything kept so far (from any worker), and joins the kept set when it does not."""
        if isinstance(outcome, Dialogue):
            return self._duplicate_of(outcome, insert=True, deferred=False) or outcome
        return outcome

    def _duplicate_of(self, dialogue: Dialogue, insert: bool = False, deferred: bool | None = None) -> Rejection | None:
        if not self.config.dedup.enabled or (self.defer_dedup if deferred is None else deferred):
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


def _price(config: RunConfig, model: ModelConfig) -> Price | None:
    for key in (model.model, model_label(model)):
        if key and key in config.prices:
            return config.prices[key]
    return None


# -- workers ---------------------------------------------------------------------------------


class _Crash:
    """A worker hit an error outside the per-seed handling (a bug): the run stops and reports it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Workers:
    """`make` over seeds on `concurrency` threads; outcomes come back on a queue as they finish.

    Daemon threads, not a ThreadPoolExecutor: on a stop the dialogues in flight are abandoned, and an
    executor's threads would keep the process alive until their calls returned.
    """

    def __init__(self, make: Callable[[Seed], Outcome], seeds: Sequence[Seed], concurrency: int) -> None:
        self._make = make
        self._seeds: queue.SimpleQueue[Seed] = queue.SimpleQueue()
        for seed in seeds:
            self._seeds.put(seed)
        self._results: queue.SimpleQueue[Outcome | _Crash] = queue.SimpleQueue()
        self._stopping = threading.Event()
        for i in range(min(concurrency, len(seeds))):
            threading.Thread(target=self._work, name=f"dialogue-{i}", daemon=True).start()

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                seed = self._seeds.get_nowait()
            except queue.Empty:
                return
            try:
                self._results.put(self._make(seed))
            except Cancelled:
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                self._results.put(_Crash(exc))
                return

    def get(self, timeout: float) -> Outcome:
        """The next finished outcome; queue.Empty after `timeout` seconds without one."""
        item = self._results.get(timeout=timeout)
        if isinstance(item, _Crash):
            raise item.error
        return item

    def stop(self) -> None:
        self._stopping.set()


class OutcomeSource(Protocol):
    """Where run_generate takes finished outcomes from: the local threads (`_Workers`) or another engine."""

    def get(self, timeout: float) -> Outcome:
        """The next finished outcome; queue.Empty after `timeout` seconds without one."""

    def stop(self) -> None:
        """Start no more seeds; the ones in flight may be abandoned."""


def already_finished(source: OutcomeSource) -> Iterator[Outcome]:
    """The outcomes `source` has finished, without waiting for more."""
    while True:
        try:
            yield source.get(timeout=0)
        except queue.Empty:
            return


# Starts making `seeds` for `run` and returns where their outcomes arrive, one per seed.
Executor = Callable[["Run", Sequence[Seed]], OutcomeSource]


def local_executor(run: Run, seeds: Sequence[Seed]) -> OutcomeSource:
    """`run.make` on `concurrency` threads of this process."""
    return _Workers(run.make, seeds, run.config.concurrency)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM sets `stop` instead of raising mid-write; a second Ctrl-C raises at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- the run ---------------------------------------------------------------------------------


def _prepare_out_dir(out_dir: Path, config: RunConfig, resume: bool) -> Manifest | None:
    previous = read_manifest(out_dir)
    if previous is None:
        if resume:
            raise UserError(f"--resume: {out_dir} holds no earlier run to resume")
        # A run killed before its first manifest landed may have left the temporary file of it.
        leftovers = ([p for p in out_dir.iterdir() if not p.name.startswith(MANIFEST) and p.name != LOCK]
                     if out_dir.exists() else [])
        if leftovers:
            raise UserError(f"--out {out_dir} is not empty and holds no synth-empathy run; choose an empty folder")
        return None
    if previous.config_fingerprint != config.fingerprint():
        raise UserError(
            f"--out {out_dir} holds a run with a different config (fingerprint {previous.config_fingerprint}, "
            f"this one {config.fingerprint()}); use another --out or the same settings"
        )
    return previous


def run_generate(config: RunConfig, out_dir: Path, resume: bool = False,
                 on_outcome: Callable[[Outcome], None] | None = None, progress: Progress | None = None,
                 executor: Executor | None = None, **run_parts) -> Manifest:
    """The whole pipeline; rerunning into the same folder continues where the last run stopped.

    The run holds the folder's one-writer lock throughout (a second writer gets UserError). Seeds already
    kept or rejected there are skipped, except those whose generation failed: they are tried again, up to
    `config.run.max_attempts` times in all. A stop (Ctrl-C, SIGTERM) abandons the dialogues in
    flight, leaves every file valid and raises KeyboardInterrupt. `run_parts` go to `Run`: programs,
    generator_lm, judge_lm (plug-in points and test doubles). `executor` makes the dialogues (default: threads
    here; `synth_empathy.run.ray_engine.RayExecutor` on Ray); recording, dedup of kept ones, resume and the
    manifest stay here whichever makes them."""
    with output_lock(Path(out_dir), folder=True):
        return _run_locked(config, Path(out_dir), resume, on_outcome, progress, executor, **run_parts)


def _run_locked(config: RunConfig, out_dir: Path, resume: bool, on_outcome: Callable[[Outcome], None] | None,
                progress: Progress | None, executor: Executor | None, **run_parts) -> Manifest:
    previous = _prepare_out_dir(out_dir, config, resume)
    started = time.perf_counter()
    run = Run(config, out_dir, **run_parts)
    seeds = plan_for(run.catalog, config)
    session: Counter[str] = Counter()
    if previous is None:  # the manifest lands before any record, so a folder with records always has one
        out_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(out_dir, _manifest(run, None, RecordTally(), session, 0.0))
    writer = CorpusWriter(out_dir)
    tally = tally_records(out_dir)
    kept_before = _kept_dialogues(out_dir)
    # One batch: the vectorized signature path, not a sketch and an array append per dialogue.
    run.index.add_many([d.id for d in kept_before], [dialogue_text(d, config.dedup.scope) for d in kept_before])
    retry = tally.to_retry(config.run.max_attempts) & {s.id for s in seeds}
    pending = [s for s in seeds if s.id not in tally.ids or s.id in retry]
    write_manifest(out_dir, _manifest(run, previous, tally, session, 0.0, to_retry=len(retry)))
    if progress:
        progress.start(len(seeds) - len(pending), tally.kept, tally.rejected - len(retry), run.meter.calls)

    first_error: list[str] = []

    def record(outcome: Outcome) -> None:
        if isinstance(outcome, Rejection) and outcome.stage == "generate" and not first_error:
            first_error.append(outcome.detail)
        (writer.keep if isinstance(outcome, Dialogue) else writer.reject)(outcome)
        tally.add(outcome)
        session["kept" if isinstance(outcome, Dialogue) else "rejected"] += 1
        session["generation_failed"] += "generation_failed" in getattr(outcome, "reasons", ())
        if progress:
            progress.advance(outcome)
        if on_outcome:
            on_outcome(outcome)

    stop = threading.Event()
    workers = (executor or local_executor)(run, pending)
    interrupted = False
    checkpoint = time.monotonic()
    try:
        with _stop_on_signals(stop):
            received = 0
            while received < len(pending) and not stop.is_set():
                try:
                    outcome = workers.get(timeout=0.25)
                except queue.Empty:
                    continue
                received += 1
                record(outcome)
                if time.monotonic() - checkpoint > CHECKPOINT_S:
                    checkpoint = time.monotonic()
                    write_manifest(out_dir, _manifest(run, previous, tally, session, time.perf_counter() - started,
                                                      to_retry=_to_retry(tally, seeds, config)))
            interrupted = stop.is_set()
            if interrupted:
                workers.stop()
                for outcome in already_finished(workers):  # finished before the stop: keep them
                    record(outcome)
    except KeyboardInterrupt:  # a second Ctrl-C, or run_generate called off the main thread
        interrupted = True
    finally:
        workers.stop()
        run.cancel()
        writer.close()
        all_failed = bool(pending) and session["generation_failed"] == len(pending)
        to_retry = _to_retry(tally, seeds, config)
        done = not all_failed and not to_retry and all(s.id in tally.ids for s in seeds)
        manifest = _manifest(run, previous, tally, session, time.perf_counter() - started, finished=done,
                             to_retry=to_retry)
        write_manifest(out_dir, manifest)
        write_card(out_dir, manifest)
        if progress:
            progress.close()
    if interrupted:
        raise KeyboardInterrupt
    failed = session["generation_failed"]
    if pending and failed == len(pending):
        raise RunError(f"all {failed} dialogues of this run failed to generate (see {out_dir / 'rejected.jsonl'}); "
                       f"first error: {first_error[0]}")
    return manifest


def _to_retry(tally: RecordTally, seeds: Sequence[Seed], config: RunConfig) -> int:
    return len(tally.to_retry(config.run.max_attempts) & {s.id for s in seeds})


def _kept_dialogues(out_dir: Path) -> list[Dialogue]:
    path = out_dir / KEPT
    first: dict[str, Dialogue] = {}
    for d in read_dialogues(path) if path.exists() and path.stat().st_size else []:
        first.setdefault(d.id, d)  # one per seed, even in a folder that two writers doubled before the lock
    return list(first.values())


def _merged_usage(run: Run, previous: Manifest | None) -> dict[str, StageUsage]:
    """This session's usage plus the earlier sessions'; latency percentiles are this session's when it has any."""
    usage = run.meter.snapshot()
    for stage, before in (previous.usage if previous else {}).items():
        mine = usage.setdefault(stage, StageUsage(p50_s=before.p50_s, p95_s=before.p95_s))
        mine.calls += before.calls
        mine.input_tokens += before.input_tokens
        mine.output_tokens += before.output_tokens
        mine.retries += before.retries
        if mine.p50_s is None:
            mine.p50_s, mine.p95_s = before.p50_s, before.p95_s
    for stage, mine in usage.items():
        mine.cost_usd = cost_usd(mine, run.prices.get(stage))
    return usage


def _manifest(run: Run, previous: Manifest | None, tally: RecordTally, session: Counter[str], elapsed: float,
              finished: bool = False, to_retry: int = 0) -> Manifest:
    usage = _merged_usage(run, previous)
    costs = [u.cost_usd for u in usage.values() if u.calls]
    tokens = sum(u.input_tokens + u.output_tokens for u in usage.values())
    timings = {"generate_s": round(elapsed + (previous.timings.get("generate_s", 0.0) if previous else 0.0), 2)}
    return Manifest(
        package_version=run.provenance["package_version"],
        config=run.config.public_dict(),
        config_fingerprint=run.fingerprint,
        versions=_versions(),
        models={"generator": run.provenance["generator_model"], "judge": run.provenance["judge_model"]},
        counts={"planned": run.config.n, "kept": tally.kept, "rejected": tally.rejected,
                "this_run": session["kept"] + session["rejected"],
                "to_retry": to_retry},
        rejection_reasons=dict(sorted(tally.reasons.items())),
        usage=usage,
        timings=timings,
        created=previous.created if previous else run.created,
        finished=_now() if finished else None,
        cost_usd=round(sum(costs), 6) if costs and None not in costs else None,
        tokens_per_kept=round(tokens / tally.kept, 1) if tally.kept else None,
    )
