"""ResilientEngine: a dspy engine around another that bounds calls in flight, retries transient failures
with jittered exponential back-off, and reports retries and latency per pipeline stage.

A failure that comes back with the same body on the retry is taken for what it is, an answer to this
request, and ends the call (llama.cpp's server answers a request it cannot serve with a 500, the same
500 every time). Overload statuses (502, 503, 504, 529), 429s and timeouts keep their whole budget.

The LMs built on it have dspy's own retries off (`num_retries=0`): dspy backs off without jitter (so
parallel dialogues retry in lockstep), its attempts are invisible to the limiter and the meter, and it
does not retry a malformed 200 body. One retry loop, here, owns all of that.
"""

from __future__ import annotations

import random
import time
from typing import Literal

from dspy import lm15
from dspy.lm15 import Request, Response
from dspy.utils import exceptions as dspy_errors

from synth_empathy.lm.limiter import AdaptiveLimiter
from synth_empathy.lm.usage import record_latency, record_retry

MAX_BACKOFF_S = 30.0
Failure = Literal["throttled", "transient"]

# A gateway or an overloaded server answers the same words however often it is asked: no signal there.
OVERLOAD_STATUSES = frozenset({502, 503, 504, 529})

_TRANSIENT = (lm15.ServerError, lm15.TimeoutError, lm15.TransportError, lm15.LockTimeoutError,
              dspy_errors.LMServerError, dspy_errors.LMTimeoutError, dspy_errors.LMTransportError)


def failure_kind(exc: BaseException) -> Failure | None:
    """How to treat a failed attempt: `throttled` (429 or Retry-After: slow down, retry), `transient`
    (5xx, timeout, connection error, malformed 200 body: retry), or None (auth, bad request, a bug: raise)."""
    if isinstance(exc, (lm15.RateLimitError, dspy_errors.LMRateLimitError)):
        return "throttled"
    if isinstance(exc, _TRANSIENT):
        return "throttled" if getattr(exc, "retry_after", None) is not None else "transient"
    status = getattr(exc, "status", None)
    # A 200 whose body is not a completion is a glitch on the way (proxy, truncated body), not a refusal.
    if type(exc) in (lm15.ProviderError, dspy_errors.LMProviderError) and status is not None and 200 <= status < 300:
        return "transient"
    return None


def repeat_signature(exc: BaseException) -> tuple | None:
    """What makes two failures "the same answer" (class, status, message), or None when a repeat says nothing:
    no body to compare (timeouts, connection errors) or an overload status."""
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None)
    if status is None or status in OVERLOAD_STATUSES or not message:
        return None
    return type(exc).__name__, status, str(message)


def backoff_s(attempt: int, base_s: float, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    Full jitter, uniform(0, min(30 s, base * 2**attempt)), spreads parallel retries apart. A server's
    Retry-After is a floor, stretched by up to 10% so the callers it paused do not return in one burst.
    """
    rng = rng or random
    if retry_after is not None and retry_after >= 0:
        return retry_after * rng.uniform(1.0, 1.1)
    return rng.uniform(0, min(MAX_BACKOFF_S, base_s * 2 ** attempt))


class ResilientEngine:
    """Wraps a dspy engine (`complete(Request) -> Response`); one call may make several attempts.

    Args:
        inner: the engine that makes one attempt (dspy's LM15Engine, the local LlamaEngine, ...).
        limiter: bounds attempts in flight to the endpoint, shared by every LM that calls it; None = unbounded.
        retries: retries of one call after transient failures.
        rate_limit_retries: retries of one call after 429s, counted apart: a 429 is the server pacing us.
        backoff_s: the first back-off's upper bound; it doubles each retry.

    Example:
        >>> from dspy.clients.engines import LM15Engine
        >>> engine = ResilientEngine(LM15Engine(router_config), limiter=AdaptiveLimiter(16), retries=3)
        >>> lm = dspy.LM("openai/gpt-4o-mini", engine=engine, cache=False, num_retries=0)
    """

    def __init__(self, inner, *, limiter: AdaptiveLimiter | None = None, retries: int = 3,
                 rate_limit_retries: int = 8, backoff_s: float = 0.5) -> None:
        self.inner = inner
        self.limiter = limiter
        self.retries = retries
        self.rate_limit_retries = rate_limit_retries
        self.backoff_s = backoff_s
        self._rng = random.Random()

    def complete(self, request: Request) -> Response:
        started = time.perf_counter()
        failed = {"throttled": 0, "transient": 0}
        last: tuple | None = None
        while True:
            epoch = self.limiter.acquire() if self.limiter else 0
            try:
                response = self.inner.complete(request)
            except Exception as exc:
                kind = failure_kind(exc)
                retry_after = getattr(exc, "retry_after", None) if kind else None
                delay = backoff_s(sum(failed.values()), self.backoff_s, retry_after, self._rng) if kind else 0.0
                if self.limiter:
                    self.limiter.release(epoch, throttled=kind == "throttled", pause_s=delay)
                budget = self.rate_limit_retries if kind == "throttled" else self.retries
                signature = repeat_signature(exc) if kind == "transient" else None
                if kind is None or failed[kind] >= budget or (signature is not None and signature == last):
                    raise
                last = signature
                failed[kind] += 1
                record_retry()
                if self.limiter:
                    self.limiter.sleep(delay)
                else:
                    time.sleep(delay)
                continue
            if self.limiter:
                self.limiter.release(epoch, ok=True)
            record_latency(time.perf_counter() - started)
            return response

    def stream(self, request: Request):
        # Not used by the pipeline; a stream that already yielded cannot be retried, so it passes through.
        return self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()
