"""A run draws its seeds from the sampler as it goes: the plan is never held whole, in a list or in a queue."""

from __future__ import annotations

import itertools
import threading

from synth_empathy.config import RunConfig
from synth_empathy.corpus.store import Tally
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_seeds
from synth_empathy.run.generate import PendingSeeds
from synth_empathy.run.workers import ThreadOutcomes


def _config(n: int) -> RunConfig:
    return RunConfig.model_validate({"n": n})


def test_pending_seeds_are_the_missing_and_the_retried_ones_in_plan_order():
    cfg = _config(30)
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    plan = plan_seeds(catalog, 30, cfg.seed)
    tally = Tally()
    for s in plan[:10]:
        tally.count(s.id, kept=True)
    for s in plan[10:14]:
        tally.count(s.id, kept=False, reasons=["generation_failed"])  # attempts left: tried again
    tally.count(plan[14].id, kept=False, reasons=["rules"])  # rejected for a reason of its own: done
    tally.count("not-in-this-plan", kept=False, reasons=["generation_failed"])
    pending = PendingSeeds(catalog, cfg, tally)
    expected = [s.id for s in plan[10:14] + plan[15:]]
    assert len(pending) == len(expected) == 19 and pending.planned == 30
    assert [s.id for s in pending] == expected
    assert [s.id for s in pending] == expected  # every pass draws the same seeds again
    assert pending.retry == {s.id for s in plan[10:14]}


def test_thread_outcomes_take_seeds_a_few_ahead_of_the_threads():
    drawn = itertools.count()
    release = threading.Event()

    class Seeds:  # a sized iterable that counts what is drawn from it
        def __len__(self) -> int:
            return 1000

        def __iter__(self):
            for i in range(1000):
                next(drawn)
                yield i

    def make(i: int) -> int:
        release.wait(5)
        return i

    source = ThreadOutcomes(make, Seeds(), concurrency=2)
    try:
        first = next(drawn)  # how many were drawn before any outcome was taken
        assert first == 2 * ThreadOutcomes.AHEAD
        release.set()
        got = [source.get(timeout=5) for _ in range(10)]
        assert sorted(got) == list(range(10))
        assert next(drawn) - first - 1 <= 10 + 1  # one drawn per outcome taken, not the whole plan
    finally:
        source.stop()
