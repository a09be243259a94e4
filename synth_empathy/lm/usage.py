"""Token and call accounting per pipeline stage (seeker, supporter, critique, revise, judge)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import dspy

from synth_empathy.schema import StageUsage


def _tokens(entry: dict) -> tuple[int, int]:
    inp = entry.get("prompt_tokens", entry.get("input_tokens")) or 0
    out = entry.get("completion_tokens", entry.get("output_tokens")) or 0
    return int(inp), int(out)


class UsageMeter:
    """Thread-safe totals per stage; each `with meter.stage(name):` block is one accounted step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stages: dict[str, StageUsage] = {}
        self.latencies: dict[str, list[float]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        with dspy.track_usage() as tracker:
            try:
                yield
            finally:
                elapsed = time.perf_counter() - start
                entries = [e for per_lm in tracker.usage_data.values() for e in per_lm]
                with self._lock:
                    usage = self.stages.setdefault(name, StageUsage())
                    usage.calls += len(entries)
                    for entry in entries:
                        inp, out = _tokens(entry)
                        usage.input_tokens += inp
                        usage.output_tokens += out
                    self.latencies.setdefault(name, []).append(elapsed)

    def totals(self) -> StageUsage:
        with self._lock:
            return StageUsage(
                calls=sum(s.calls for s in self.stages.values()),
                input_tokens=sum(s.input_tokens for s in self.stages.values()),
                output_tokens=sum(s.output_tokens for s in self.stages.values()),
            )

    def snapshot(self) -> dict[str, StageUsage]:
        with self._lock:
            return {name: usage.model_copy() for name, usage in self.stages.items()}


_current_meter: ContextVar[UsageMeter | None] = ContextVar("synth_empathy_meter", default=None)


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
