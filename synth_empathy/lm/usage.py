"""Accounting per pipeline stage (seeker, supporter, critique, revise, judge): calls, tokens (cached input apart),
retries, latency, cost."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import dspy

from synth_empathy.config import ModelConfig, Price
from synth_empathy.schema import StageUsage

UNSTAGED = "other"  # calls made outside any `stage()` block
GENERATOR_STAGES = ("seeker", "supporter", "critique", "revise")  # the generator model's stages; "judge" is the judge's
# the fields that add up across calls and sessions
COUNTED = ("calls", "input_tokens", "cached_input_tokens", "output_tokens", "retries")


def usage_from(entries: list[dict]) -> StageUsage:
    """The calls and tokens of LM usage entries (OpenAI's `usage` objects, or dspy's records of them)."""
    tokens = [_tokens(entry) for entry in entries]
    return StageUsage(calls=len(entries), input_tokens=sum(i for i, _, _ in tokens),
                      cached_input_tokens=sum(c for _, c, _ in tokens), output_tokens=sum(o for _, _, o in tokens))


def _tokens(entry: dict) -> tuple[int, int, int]:
    """(input, cached input, output) tokens of one usage entry; OpenAI's prompt_tokens include the cached ones."""
    inp = entry.get("prompt_tokens", entry.get("input_tokens")) or 0
    out = entry.get("completion_tokens", entry.get("output_tokens")) or 0
    cached = (entry.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return int(inp), int(cached), int(out)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def cost_usd(usage: StageUsage, price: Price | None) -> float | None:
    """The cost of a stage's tokens at `price`; None when the price is unknown. Cached input tokens cost
    `price.cached_input` when it is set, else the full input price."""
    if price is None:
        return None
    cached_rate = price.input if price.cached_input is None else price.cached_input
    fresh = usage.input_tokens - usage.cached_input_tokens
    dollars = fresh * price.input + usage.cached_input_tokens * cached_rate + usage.output_tokens * price.output
    return round(dollars / 1e6, 6)


def add_usage(into: StageUsage, part: StageUsage) -> None:
    """Add `part`'s calls, tokens and retries to `into` (latency percentiles and cost do not add)."""
    for name in COUNTED:
        setattr(into, name, getattr(into, name) + getattr(part, name))


def price_for(prices: dict[str, Price], model: ModelConfig, label: str) -> Price | None:
    """A model's price, keyed by its configured name or its label (e.g. "local:x.gguf"); None = unknown."""
    for key in (model.model, label):
        if key and key in prices:
            return prices[key]
    return None


def with_earlier_usage(usage: dict[str, StageUsage], earlier: dict[str, StageUsage],
                       prices: dict[str, Price | None]) -> dict[str, StageUsage]:
    """This session's usage plus the earlier sessions', each stage priced; latency percentiles are this
    session's when it has any."""
    for name, before in earlier.items():
        mine = usage.setdefault(name, StageUsage(p50_s=before.p50_s, p95_s=before.p95_s))
        add_usage(mine, before)
        if mine.p50_s is None:
            mine.p50_s, mine.p95_s = before.p50_s, before.p95_s
    for name, mine in usage.items():
        mine.cost_usd = cost_usd(mine, prices.get(name))
    return usage


class UsageMeter:
    """Thread-safe totals per stage.

    Calls and tokens come from dspy's usage tracker around each `with meter.stage(name):` block, so any
    LM counts; retries and per-call latency are reported by the ResilientEngine the LM layer builds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stages: dict[str, StageUsage] = {}
        self.latencies: dict[str, list[float]] = {}  # seconds per LM call, by stage

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        token = _current_stage.set(name)
        with dspy.track_usage() as tracker:
            try:
                yield
            finally:
                _current_stage.reset(token)
                part = usage_from([e for per_lm in tracker.usage_data.values() for e in per_lm])
                with self._lock:
                    add_usage(self.stages.setdefault(name, StageUsage()), part)

    def add_latency(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stages.setdefault(stage, StageUsage())
            self.latencies.setdefault(stage, []).append(seconds)

    def add_retry(self, stage: str) -> None:
        with self._lock:
            self.stages.setdefault(stage, StageUsage()).retries += 1

    def calls(self) -> int:
        with self._lock:
            return sum(s.calls for s in self.stages.values())

    def drain(self) -> dict[str, dict]:
        """Take the totals and latencies so far, leaving the meter empty: {stage: {calls, ..., latencies}},
        JSON-ready, for another process's meter to `merge`. Drained parts add up to exactly what was metered."""
        with self._lock:
            stages, latencies = self.stages, self.latencies
            self.stages, self.latencies = {}, {}
        return {name: {**usage.model_dump(include=set(COUNTED)), "latencies": latencies.get(name, [])}
                for name, usage in stages.items()}

    def merge(self, drained: dict[str, dict]) -> None:
        """Add what another meter's `drain` took."""
        with self._lock:
            for name, part in drained.items():
                add_usage(self.stages.setdefault(name, StageUsage()), StageUsage(**{k: part[k] for k in COUNTED}))
                self.latencies.setdefault(name, []).extend(part["latencies"])

    def snapshot(self) -> dict[str, StageUsage]:
        """A copy per stage, with the p50/p95 of its call latencies."""
        with self._lock:
            out = {}
            for name, usage in self.stages.items():
                latencies = sorted(self.latencies.get(name, []))
                p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
                out[name] = usage.model_copy(update={
                    "p50_s": None if p50 is None else round(p50, 4),
                    "p95_s": None if p95 is None else round(p95, 4),
                })
            return out


_current_meter: ContextVar[UsageMeter | None] = ContextVar("synth_empathy_meter", default=None)
_current_stage: ContextVar[str] = ContextVar("synth_empathy_stage", default=UNSTAGED)


@contextmanager
def metering(meter: UsageMeter | None) -> Iterator[None]:
    """Make `meter` the one that `stage()` blocks in this thread report to."""
    token = _current_meter.set(meter)
    try:
        yield
    finally:
        _current_meter.reset(token)


def stage(name: str):
    """Account the LM calls inside the block to `name` on the current meter (a no-op without one)."""
    meter = _current_meter.get()
    return meter.stage(name) if meter is not None else nullcontext()


def record_latency(seconds: float) -> None:
    """One finished LM call, to the current meter and stage (a no-op without a meter)."""
    meter = _current_meter.get()
    if meter is not None:
        meter.add_latency(_current_stage.get(), seconds)


def record_retry() -> None:
    """One retried attempt, to the current meter and stage (a no-op without a meter)."""
    meter = _current_meter.get()
    if meter is not None:
        meter.add_retry(_current_stage.get())
