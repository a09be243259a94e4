"""AdaptiveLimiter: how many LM calls may be in flight to one endpoint, adapted to its rate limits (AIMD)."""

from __future__ import annotations

import threading
import time


class Cancelled(BaseException):
    """The run is stopping: abandon this call.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way up (dspy's,
    the pipeline's) turns an abandoned call into a failed dialogue that would then be recorded.
    """


class AdaptiveLimiter:
    """Bounds the calls in flight and adapts the bound: additive increase, multiplicative decrease.

    A rate limit halves the bound and holds every new call back until the server's Retry-After has
    passed; each full window of successes (as many as the bound) adds one slot, up to `ceiling`.
    Calls that started before a cut carry the old epoch and cannot cut again: one burst of 429s from
    calls already in flight halves the bound once, not once per call.

    Thread-safe. `cancel()` wakes every waiter with `Cancelled`, so a stopping run abandons its
    queued and backing-off calls at once.

    Example:
        >>> limiter = AdaptiveLimiter(ceiling=16)
        >>> epoch = limiter.acquire()
        >>> limiter.release(epoch, throttled=True, pause_s=1.0)  # a 429 with Retry-After: 1
        >>> limiter.limit
        8
    """

    def __init__(self, ceiling: int, floor: int = 1) -> None:
        if ceiling < 1 or not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor={floor}, ceiling={ceiling}")
        self.ceiling = ceiling
        self.floor = floor
        self._limit = ceiling
        self._successes = 0  # since the bound last changed
        self._in_flight = 0
        self._epoch = 0
        self._resume_at = 0.0  # time.monotonic() before which no call starts
        self._cancelled = False
        self._cond = threading.Condition()
        self.cuts = 0  # times the bound was lowered
        self.peak_in_flight = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> int:
        """Wait for a free slot (and the end of any back-off pause); returns the epoch to hand back to release."""
        with self._cond:
            while True:
                if self._cancelled:
                    raise Cancelled
                pause = self._resume_at - time.monotonic()
                if pause <= 0 and self._in_flight < self._limit:
                    break
                self._cond.wait(timeout=pause if pause > 0 else None)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return self._epoch

    def release(self, epoch: int, *, ok: bool = False, throttled: bool = False, pause_s: float = 0.0) -> None:
        """Free the slot. `ok`: the call succeeded; `throttled`: the server said slow down (429, Retry-After)."""
        with self._cond:
            self._in_flight -= 1
            if ok:
                self._successes += 1
                if self._successes >= self._limit:
                    self._limit = min(self.ceiling, self._limit + 1)
                    self._successes = 0
            elif throttled:
                if epoch == self._epoch:
                    self._limit = max(self.floor, self._limit // 2)
                    self._successes = 0
                    self._epoch += 1
                    self.cuts += 1
                self._resume_at = max(self._resume_at, time.monotonic() + pause_s)
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Sleep for a retry's back-off, or raise Cancelled as soon as the run stops."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._cancelled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(timeout=left)
            raise Cancelled

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
