"""Generation on Ray Data: seeds are a dataset, dialogues are made by `map_batches` over an actor pool.

Only the config travels: each actor builds its own `run.generate.Run` (LM clients, limiter, programs) from the
RunConfig, because dspy LMs and the llama.cpp engine do not pickle. The driver keeps everything that must
be single: `run_generate`'s one recording loop takes the outcomes from `RayExecutor` instead of its
threads, so resume (skip seeds already written), CorpusWriter, the manifest and the card are the local
engine's. Two checks move to the driver:

- dedup of kept dialogues: actors skip it (`Run(defer_dedup=True)`) and the driver runs `Run.admit` on
  every dialogue as it is recorded, against everything kept from every actor, so two near-duplicates
  made on different actors are never both kept;
- usage: each actor call returns the calls, tokens, retries and raw call latencies metered since its
  last return, and the driver adds them to its meter, which the manifest reads as before.

Concurrency: `concurrency` is per actor (dialogues in flight in one actor, and its AIMD limiter's ceiling
per endpoint); an endpoint sees at most workers x concurrency calls.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from synth_empathy.config import RayConfig, RunConfig
from synth_empathy.errors import RunError, require_extra
from synth_empathy.graphs.catalog import Catalog
from synth_empathy.run.generate import Run
from synth_empathy.run.workers import Crash, Outcome, OutcomeSource, Workers
from synth_empathy.schema import Dialogue, Rejection, Seed

# -- the actor ---------------------------------------------------------------------------------


class SeedWorker:
    """A Ray Data actor making dialogues: one `Run` and `concurrency` dialogue threads per actor.

    Batches may overlap (two calls in flight per actor), so the pool stays busy through a batch's slow
    last dialogue; the actor's one `Workers` pool keeps the dialogues in flight at `concurrency`.
    """

    def __init__(self, config_json: str, catalog: Catalog, secrets: dict[str, str]) -> None:
        for name, value in secrets.items():  # a cluster node's own environment wins
            os.environ.setdefault(name, value)
        config = RunConfig.model_validate_json(config_json)
        self.run = Run(config, Path("."), catalog=catalog, defer_dedup=True)
        self.pool = Workers(self.run.make, config.concurrency, name="dialogue")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        seeds = [Seed.model_validate_json(s) for s in batch["seed"]]
        outcomes = self.pool.map(seeds)
        # Every call of a seed is metered before its outcome returns, and every batch drains after its last
        # seed, so the drained parts add up to exactly the actor's usage, even with batches overlapping.
        usage = json.dumps(self.run.meter.drain())
        return {"kind": [type(o).__name__ for o in outcomes],
                "outcome": [o.model_dump_json() for o in outcomes],
                "usage": [usage] + [""] * (len(outcomes) - 1)}  # once per batch, on its first row


# -- the driver --------------------------------------------------------------------------------


class RayExecutor:
    """An `Executor` for `run_generate`: `run_generate(config, out, executor=RayExecutor(address=...))`.

    Args:
        address: an existing cluster ("auto", "ray://head:10001", ...); None starts a local instance
            (or uses the one this process already started with `ray.init`).
        workers: generation actors; None = one per CPU of the cluster.
        batch_size: seeds per actor call; None = 2 x concurrency.
        init_args: more `ray.init` arguments when this executor starts Ray.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, batch_size: int | None = None,
                 cpus_per_worker: float = 1.0, init_args: dict[str, Any] | None = None) -> None:
        self.ray = require_extra("ray", "ray", "--engine ray", name="Ray", submodules=("ray.data",))
        self.address = address
        self.workers = workers
        self.batch_size = batch_size
        self.cpus_per_worker = cpus_per_worker
        self.init_args = init_args or {}

    @classmethod
    def from_config(cls, config: RayConfig, address: str | None = None) -> RayExecutor:
        return cls(address=address or config.address, workers=config.workers, batch_size=config.batch_size)

    def __call__(self, run: Run, seeds: Collection[Seed]) -> OutcomeSource:
        return RayOutcomes(self, run, seeds)


class RayOutcomes:
    """The outcomes of one run's seeds as Ray Data returns them, admitted (deduped) on the driver."""

    def __init__(self, executor: RayExecutor, run: Run, seeds: Collection[Seed]) -> None:
        self._run = run
        self._results: queue.SimpleQueue[dict | Crash] = queue.SimpleQueue()
        self._ready: list[Outcome] = []
        self._stopping = threading.Event()
        self._owns_ray = False
        self._ray = ray = executor.ray
        if not seeds:
            return
        if not ray.is_initialized():
            local = {"include_dashboard": False, "log_to_driver": False} if executor.address is None else {}
            ray.init(address=executor.address, **{**local, **executor.init_args})
            self._owns_ray = True
        ray.data.DataContext.get_current().enable_progress_bars = False  # the run has its own progress
        config = run.config
        workers = executor.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // executor.cpus_per_worker))
        batch = executor.batch_size or 2 * config.concurrency
        dataset = ray.data.from_items([{"seed": s.model_dump_json()} for s in seeds],
                                      override_num_blocks=max(1, math.ceil(len(seeds) / batch)))
        key_env = config.model.api_key_env
        secrets = {key_env: os.environ[key_env]} if config.model.backend == "openai" and key_env in os.environ else {}
        self._dataset = dataset.map_batches(
            SeedWorker, batch_size=batch, batch_format="numpy", udf_modifying_row_count=False,
            fn_constructor_kwargs={"config_json": config.model_dump_json(), "catalog": run.catalog,
                                   "secrets": secrets},
            compute=ray.data.ActorPoolStrategy(size=min(workers, math.ceil(len(seeds) / batch)),
                                               max_tasks_in_flight_per_actor=2, max_concurrent_calls_per_actor=2,
                                               enable_true_multi_threading=True),
            num_cpus=executor.cpus_per_worker,
        )
        threading.Thread(target=self._pump, name="ray-outcomes", daemon=True).start()

    def _pump(self) -> None:
        try:
            for block in self._dataset.iter_batches(batch_size=None, batch_format="numpy"):
                if self._stopping.is_set():
                    return
                self._results.put(block)
        except BaseException as exc:  # noqa: BLE001 - raised on the driver's main thread by get()
            self._results.put(Crash(exc))

    def _decode(self, block: dict) -> None:
        for usage in block["usage"]:
            if usage:
                self._run.meter.merge(json.loads(usage))
        for kind, text in zip(block["kind"], block["outcome"], strict=True):
            self._ready.append({"Dialogue": Dialogue, "Rejection": Rejection}[kind].model_validate_json(text))

    def get(self, timeout: float) -> Outcome:
        while not self._ready:
            item = self._results.get(timeout=timeout)
            if isinstance(item, Crash):
                if self._stopping.is_set():  # Ray shut down under a stop: nothing more is coming
                    raise queue.Empty
                first = str(item.error).strip().splitlines()
                raise RunError(f"the Ray run failed: {first[-1] if first else type(item.error).__name__}") \
                    from item.error
            self._decode(item)
        return self._run.admit(self._ready.pop(0))

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._owns_ray:
            self._ray.shutdown()
