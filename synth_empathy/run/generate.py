"""Generate: plan seeds -> role-play (bounded concurrency) -> rules -> dedup -> judge -> write; resume.

Dialogues run on worker threads (`run.workers`), one dialogue a thread, its turns in order; every LM call
goes through the LM layer's ResilientEngine (limiter, retries). Only the calling thread writes records, so
each planned seed ends as exactly one line in dialogues.jsonl or rejected.jsonl, and a stop never tears one.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dspy

from synth_empathy.config import ModelConfig, RunConfig
from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.manifest import build_manifest, now, package_version, read_manifest, write_manifest
from synth_empathy.corpus.read import stream_corpus
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE, CorpusWriter, Tally, tally_records
from synth_empathy.errors import RunError, UserError, error_detail
from synth_empathy.filters.dedup import DedupGate
from synth_empathy.filters.judge import judge_verdict
from synth_empathy.filters.pii import corpus_pii
from synth_empathy.filters.rules import rules_rejection
from synth_empathy.graphs.catalog import Catalog, load_catalog, seeded_sources
from synth_empathy.graphs.sampler import iter_plan
from synth_empathy.lm import (
    AdaptiveLimiter,
    PlainAdapter,
    UsageMeter,
    build_lm,
    local_engine_stats,
    model_label,
    structured_output_mode,
)
from synth_empathy.lm.usage import GENERATOR_STAGES, metering, with_earlier_usage
from synth_empathy.programs import Programs, load_programs
from synth_empathy.publish.card import write_card
from synth_empathy.run.budget import Budget, BudgetedOutcomes, BudgetReached, require_prices, stage_prices
from synth_empathy.run.progress import Progress
from synth_empathy.run.roleplay import roleplay
from synth_empathy.run.workers import Outcome, OutcomeSource, ThreadOutcomes, already_finished
from synth_empathy.schema import Dialogue, Manifest, Provenance, Rejection, Seed, Situation, Source

# A user filter: None keeps the dialogue; a reason code (str) or a Rejection drops it.
CustomFilter = Callable[[Dialogue], "Rejection | str | None"]

CHECKPOINT_S = 30.0  # the manifest (counts, usage) is rewritten at least this often during a run


def _endpoint(config: ModelConfig) -> tuple[str, str | None]:
    # LMs that call one endpoint share its rate limit, whatever model they name.
    if config.backend == "local":
        return config.backend, config.model
    if config.backend == "litellm" and not config.api_base:
        return config.backend, (config.model or "").split("/", 1)[0]  # the provider's own service
    return config.backend, config.api_base


def dspy_settings(config: RunConfig) -> dict:
    """The dspy.context settings for a run's calls. DSPy keeps every call's prompt and response in the LM's, the
    modules' and a global history, and every prediction with its inputs in a global trace (for optimizers): up to
    10,000 entries each, memory that grows with n. Both off unless config.run.lm_history asks for them."""
    return {} if config.run.lm_history else {"disable_history": True, "max_trace_size": 0}


class Run:
    """One generate run into one output directory; thread-safe where workers meet (dedup gate, meter)."""

    def __init__(self, config: RunConfig, out_dir: Path, programs: Programs | None = None,
                 generator_lm: dspy.LM | None = None, judge_lm: dspy.LM | None = None,
                 catalog: Catalog | None = None, filters: Sequence[CustomFilter] = (),
                 defer_dedup: bool = False) -> None:
        self.config = config
        # True where dialogues are made away from the recording process (a Ray actor): the dedup check
        # against what is kept then happens only where outcomes are recorded, in `admit`.
        self.defer_dedup = defer_dedup
        self.out_dir = Path(out_dir)
        self.catalog = catalog or load_catalog(config.personas_dir, config.scenarios_dir)
        self.custom_filters = list(filters)
        self.limiters: dict[tuple[str, str | None], AdaptiveLimiter] = {}
        judge_config = config.judge_model()
        self.generator_lm = generator_lm or build_lm(config.model, limiter=self._limiter(config.model))
        self.judge_lm = judge_lm or build_lm(judge_config, limiter=self._limiter(judge_config))
        self.programs = programs or load_programs(config.dialogue.critique_rounds, config.programs_dir)
        self.adapter = PlainAdapter()
        self.budget: Budget | None = None  # set by run_generate under --max-cost
        self.sources: list[Source] = []  # the imported datasets the plan is seeded from; set with the plan
        self.dspy_settings = dspy_settings(config)
        self.meter = UsageMeter()
        self.gate = DedupGate(config.dedup)
        self.created = now()
        self.prices = stage_prices(config)
        self.models = {"generator": model_label(config.model), "judge": model_label(judge_config)}
        self.provenance = dict(
            generator_model=self.models["generator"],
            judge_model=self.models["judge"],
            program_versions=self.programs.versions(),
            config_fingerprint=config.fingerprint(),
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
                            provenance=Provenance(created=now(), **self.provenance))
        return self.screen(dialogue)

    def screen(self, dialogue: Dialogue) -> Outcome:
        """Rules, custom filters, a dedup check against what is kept, then the judge; every rejection keeps
        the dialogue."""
        rejected = rules_rejection(dialogue, self.config.rules)
        if rejected:
            return rejected
        for custom in self.custom_filters:
            verdict = custom(dialogue)
            if isinstance(verdict, str):
                verdict = Rejection(id=dialogue.id, stage="custom", reasons=[verdict], seed=dialogue.seed,
                                    dialogue=dialogue, detail=getattr(custom, "__name__", ""))
            if verdict is not None:
                return verdict
        # Checked before the judge, so no judge calls are spent on a duplicate.
        duplicate = None if self.defer_dedup else self.gate.check(dialogue)
        if duplicate:
            return duplicate
        with metering(self.meter), dspy.context(lm=self.judge_lm, adapter=self.adapter, **self.dspy_settings):
            verdict = judge_verdict(dialogue, self.programs.judge, self.config.judge)
        if isinstance(verdict, Rejection) or self.defer_dedup:
            return verdict
        return self.admit(verdict)

    def admit(self, outcome: Outcome) -> Outcome:
        """The last word on a kept dialogue (also for one made elsewhere): it must not duplicate anything kept
        so far, from any worker, and joins the kept set when it does not."""
        if isinstance(outcome, Dialogue):
            return self.gate.admit(outcome) or outcome
        return outcome


# Starts making `seeds` (sized, iterable: a PendingSeeds) for `run` and returns where their outcomes arrive,
# one per seed.
Executor = Callable[[Run, "PendingSeeds"], OutcomeSource]


def local_executor(run: Run, seeds: PendingSeeds) -> OutcomeSource:
    """`run.make` on `concurrency` threads of this process."""
    return ThreadOutcomes(run.make, seeds, run.config.concurrency)


class PendingSeeds:
    """The seeds of a run's plan that its folder does not hold yet, plus those to try again: a sized iterable
    that draws them from the sampler again on every pass rather than holding the plan, so a large n costs no
    memory up front. Counting them is one pass over the plan, which also notes the situations it uses (for the
    sources a run credits); the ids held are those of the seeds to retry."""

    def __init__(self, catalog: Catalog, config: RunConfig, tally: Tally) -> None:
        self._catalog, self._config = catalog, config
        self._done = frozenset(tally.ids)
        retry = tally.to_retry(config.run.max_attempts)
        self.planned = 0
        self.retry: set[str] = set()  # seeds of this plan retried in this run
        self._count = 0
        self.situations: dict[str, Situation] = {}  # the plan's situations, by id: at most the catalog's
        for s in iter_plan(catalog, config):
            self.planned += 1
            self.situations.setdefault(s.situation.id, s.situation)
            if s.id in retry:
                self.retry.add(s.id)
            self._count += s.id not in self._done or s.id in retry

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Seed]:
        return (s for s in iter_plan(self._catalog, self._config) if s.id not in self._done or s.id in self.retry)


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
        leftovers = ([p for p in out_dir.iterdir() if not p.name.startswith(MANIFEST_FILE) and p.name != LOCK]
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
                 executor: Executor | None = None, max_cost: float | None = None, **run_parts) -> Manifest:
    """The whole pipeline; rerunning into the same folder continues where the last run stopped.

    The run holds the folder's one-writer lock throughout (a second writer gets UserError). Seeds already
    kept or rejected there are skipped, except those whose generation failed: they are tried again, up to
    `config.run.max_attempts` times in all. A stop (Ctrl-C, SIGTERM) abandons the dialogues in
    flight, leaves every file valid and raises KeyboardInterrupt. `run_parts` go to `Run`: programs,
    generator_lm, judge_lm (plug-in points and test doubles). `executor` makes the dialogues (default: threads
    here, or `synth_empathy.run.ray_engine.RayExecutor` when `config.engine` is "ray"); recording, dedup of
    kept ones, resume and the manifest stay here whichever makes them. `max_cost` (USD) starts no dialogue that
    could pass it (see run.budget); the run then ends early, resumable, with `manifest.budget.stopped` set."""
    out_dir = Path(out_dir)
    if executor is None and config.engine == "ray":
        # Imported here: the Ray engine builds on this module's Run.
        from synth_empathy.run.ray_engine import RayExecutor

        executor = RayExecutor.from_config(config.ray)
    with output_lock(out_dir, folder=True):
        return _run_locked(config, out_dir, resume, on_outcome, progress, executor, max_cost, **run_parts)


def _run_locked(config: RunConfig, out_dir: Path, resume: bool, on_outcome: Callable[[Outcome], None] | None,
                progress: Progress | None, executor: Executor | None, max_cost: float | None,
                **run_parts) -> Manifest:
    previous = _prepare_out_dir(out_dir, config, resume)
    started = time.perf_counter()
    run = Run(config, out_dir, **run_parts)
    if max_cost is not None:
        if executor is not None:
            raise UserError("--max-cost runs on the local engine only (not with --engine ray)")
        require_prices(run.prices, {**dict.fromkeys(GENERATOR_STAGES, config.model), "judge": config.judge_model()})
    session = Tally()
    if previous is None:  # the manifest lands before any record, so a folder with records always has one
        out_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(out_dir, _manifest(run, None, Tally(), session, 0.0))
    writer = CorpusWriter(out_dir)
    tally = tally_records(out_dir)
    if (out_dir / KEPT_FILE).exists():
        run.gate.add_kept(stream_corpus(out_dir).dialogues())
    pending = PendingSeeds(run.catalog, config, tally)
    run.sources = seeded_sources(run.catalog, pending.situations.values())
    budget = None if max_cost is None else Budget(max_cost, lambda: _spent(run, previous), tally.done)
    run.budget = budget
    write_manifest(out_dir, _manifest(run, previous, tally, session, 0.0, to_retry=len(pending.retry)))
    if progress:
        progress.start(pending.planned - len(pending), tally, run.meter.calls)

    first_error: list[str] = []

    def record(outcome: Outcome) -> None:
        if isinstance(outcome, Rejection) and outcome.stage == "generate" and not first_error:
            first_error.append(outcome.detail)
        (writer.keep if isinstance(outcome, Dialogue) else writer.reject)(outcome)
        tally.add(outcome)
        session.add(outcome)
        if progress:
            progress.advance(outcome)
        if on_outcome:
            on_outcome(outcome)

    stop = threading.Event()
    received = 0
    workers = (BudgetedOutcomes(run.make, pending, config.concurrency, budget) if budget
               else (executor or local_executor)(run, pending))
    interrupted = False
    checkpoint = time.monotonic()
    try:
        with _stop_on_signals(stop):
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
                                                      to_retry=_to_retry(tally, session, pending, config)))
            interrupted = stop.is_set()
            if interrupted:
                workers.stop()
                for outcome in already_finished(workers):  # finished before the stop: keep them
                    received += 1
                    record(outcome)
    except BudgetReached:  # the cap left seeds unstarted: a clean, resumable end
        pass
    except KeyboardInterrupt:  # a second Ctrl-C, or run_generate called off the main thread
        interrupted = True
    finally:
        workers.stop()
        run.cancel()
        writer.close()
        all_failed = bool(pending) and session.reasons["generation_failed"] == len(pending)
        to_retry = _to_retry(tally, session, pending, config)
        done = not all_failed and not to_retry and received == len(pending)
        manifest = _manifest(run, previous, tally, session, time.perf_counter() - started, finished=done,
                             to_retry=to_retry)
        if done:  # a finished corpus only: an interrupted run stops at once (the scan imports presidio and spaCy)
            manifest.pii = corpus_pii(stream_corpus(out_dir, strict=False).dialogues())
        write_manifest(out_dir, manifest)
        write_card(out_dir, manifest)
        if progress:
            progress.close()
    if interrupted:
        raise KeyboardInterrupt
    failed = session.reasons["generation_failed"]
    if pending and failed == len(pending):
        raise RunError(f"all {failed} dialogues of this run failed to generate (see {out_dir / 'rejected.jsonl'}); "
                       f"first error: {first_error[0]}")
    return manifest


def _manifest(run: Run, previous: Manifest | None, tally: Tally, session: Tally, elapsed: float,
              finished: bool = False, to_retry: int = 0) -> Manifest:
    usage = with_earlier_usage(run.meter.snapshot(), previous.usage if previous else {}, run.prices)
    timings = {"generate_s": round(elapsed + (previous.timings.get("generate_s", 0.0) if previous else 0.0), 2)}
    return build_manifest(run.config, models=run.models, planned=run.config.n, tally=tally, usage=usage,
                          timings=timings, created=previous.created if previous else run.created,
                          finished=now() if finished else None,
                          extra_counts={"this_run": session.done, "to_retry": to_retry},
                          structured_output={"generator": structured_output_mode(run.config.model),
                                             "judge": structured_output_mode(run.config.judge_model())},
                          human_agreement=previous.human_agreement if previous else None,
                          budget=run.budget.record() if run.budget else None, sources=run.sources,
                          local_engine=local_engine_stats())


def _spent(run: Run, previous: Manifest | None) -> float:
    """USD spent in the output folder so far, earlier sessions included (every stage is priced under a cap)."""
    usage = with_earlier_usage(run.meter.snapshot(), previous.usage if previous else {}, run.prices)
    return sum(u.cost_usd or 0.0 for u in usage.values())


def _to_retry(tally: Tally, session: Tally, pending: PendingSeeds, config: RunConfig) -> int:
    """Seeds of this plan whose latest generation failed with attempts left: retried ones, or failed this run."""
    return len(tally.to_retry(config.run.max_attempts) & (pending.retry | session.ids))
