"""`--max-cost USD`: start no dialogue that could carry the spend past a cap, and say so in the manifest.

A dialogue's cost is estimated from the running average over every dialogue written so far in the output
folder (this session and earlier ones). A new seed starts only while

    spent + (in flight + 1) * average <= cap

so the in-flight dialogues are counted at a whole dialogue each (they may have paid part of it already: the
estimate errs on the safe side). Before any dialogue has finished there is no average: one dialogue runs
alone, as the pilot. Seeds left unstarted stay unwritten, so a rerun with a higher cap continues with them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Iterator

from synth_empathy.config import ModelConfig, Price, RunConfig
from synth_empathy.errors import UserError
from synth_empathy.lm import model_label
from synth_empathy.lm.usage import GENERATOR_STAGES, price_for
from synth_empathy.run.workers import Crash, Outcome, Workers
from synth_empathy.schema import Seed


class BudgetReached(Exception):  # noqa: N818 - a stop, not a failure
    """Every dialogue started under the cap has arrived and the next one would pass it."""


def stage_prices(config: RunConfig) -> dict[str, Price | None]:
    """The price of each stage's model (None = unknown): the generator's stages, and the judge."""
    judge = config.judge_model()
    prices = dict.fromkeys(GENERATOR_STAGES, price_for(config.prices, config.model, model_label(config.model)))
    return {**prices, "judge": price_for(config.prices, judge, model_label(judge))}


def require_prices(prices: dict[str, Price | None], models: dict[str, ModelConfig]) -> None:
    """A cap is meaningless without a price for every stage: bad input naming the model that has none."""
    for stage, price in prices.items():
        if price is None:
            model = models[stage]
            name = model.model or model_label(model)
            raise UserError(f'--max-cost needs [prices] for model {name} (add [prices."{name}"] with input and '
                            "output USD per 1M tokens)")


class Budget:
    """The cap, the spend so far (from `spent()`) and how many dialogues that spend paid for.

    Args:
        max_cost_usd: the cap.
        spent: the USD spent so far in this output folder, every session included.
        done_before: dialogues written by earlier sessions (their cost is in `spent()` from the start).
    """

    def __init__(self, max_cost_usd: float, spent: Callable[[], float], done_before: int = 0) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent = spent
        self.done = done_before
        self.stopped = False

    def per_dialogue(self) -> float | None:
        return self.spent() / self.done if self.done else None

    def may_start(self, in_flight: int) -> bool:
        average = self.per_dialogue()
        if average is None:
            return in_flight == 0 and self.spent() < self.max_cost_usd
        return self.spent() + (in_flight + 1) * average <= self.max_cost_usd

    def record(self) -> dict:
        """What the manifest says under `budget`."""
        return {"max_cost_usd": self.max_cost_usd, "spent_usd": round(self.spent(), 6), "stopped": self.stopped}


class BudgetedOutcomes:
    """`make` over seeds on `concurrency` threads, starting each seed only while `budget` allows it; an
    OutcomeSource. After the last outcome it raises BudgetReached from `get` when the cap left seeds unstarted."""

    def __init__(self, make: Callable[[Seed], Outcome], seeds: Collection[Seed], concurrency: int,
                 budget: Budget) -> None:
        self._budget = budget
        self._seeds: Iterator[Seed] = iter(seeds)
        self._left = len(seeds)
        self._concurrency = concurrency
        self._in_flight = 0
        self._lock = threading.Lock()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: Workers = Workers(make, min(concurrency, max(1, len(seeds))), name="dialogue")
        self._fill()

    def _fill(self) -> None:
        with self._lock:
            while self._left and self._in_flight < self._concurrency:
                if not self._budget.may_start(self._in_flight):
                    self._budget.stopped = True
                    return
                self._pool.submit(0, next(self._seeds), self._results)
                self._left -= 1
                self._in_flight += 1

    def get(self, timeout: float) -> Outcome:
        with self._lock:
            exhausted = self._in_flight == 0 and self._budget.stopped
        if exhausted:
            raise BudgetReached
        _, value = self._results.get(timeout=timeout)
        if isinstance(value, Crash):
            raise value.error
        with self._lock:
            self._in_flight -= 1
            self._budget.done += 1
        self._fill()
        return value

    def stop(self) -> None:
        self._pool.stop()
