"""AdaptiveLimiter (AIMD, Retry-After pause, cancel) and the retry back-off, without a network."""

import random
import threading
import time

import pytest
from dspy import lm15

from synth_empathy.lm.limiter import AdaptiveLimiter, Cancelled
from synth_empathy.lm.resilient import MAX_BACKOFF_S, backoff_s, failure_kind


def test_a_burst_of_429s_from_calls_in_flight_halves_the_bound_once():
    limiter = AdaptiveLimiter(ceiling=16)
    epochs = [limiter.acquire() for _ in range(8)]
    for epoch in epochs:  # all eight started before the first cut
        limiter.release(epoch, throttled=True)
    assert limiter.limit == 8 and limiter.cuts == 1
    limiter.release(limiter.acquire(), throttled=True)  # a call started after the cut may cut again
    assert limiter.limit == 4 and limiter.cuts == 2


def test_successes_raise_the_bound_by_one_per_window_up_to_the_ceiling():
    limiter = AdaptiveLimiter(ceiling=6)
    limiter.release(limiter.acquire(), throttled=True)
    assert limiter.limit == 3
    for _ in range(3):  # one full window of 3 successes
        limiter.release(limiter.acquire(), ok=True)
    assert limiter.limit == 4
    for _ in range(100):
        limiter.release(limiter.acquire(), ok=True)
    assert limiter.limit == 6


def test_the_bound_never_drops_below_the_floor():
    limiter = AdaptiveLimiter(ceiling=4, floor=1)
    for _ in range(10):
        limiter.release(limiter.acquire(), throttled=True)
    assert limiter.limit == 1


def test_calls_beyond_the_bound_wait_for_a_free_slot():
    limiter = AdaptiveLimiter(ceiling=2)
    held = [limiter.acquire(), limiter.acquire()]
    got = threading.Event()
    threading.Thread(target=lambda: (limiter.acquire(), got.set()), daemon=True).start()
    assert not got.wait(0.1) and limiter.in_flight == 2
    limiter.release(held[0], ok=True)
    assert got.wait(1.0) and limiter.peak_in_flight == 2


def test_retry_after_holds_every_new_call_back():
    limiter = AdaptiveLimiter(ceiling=4)
    limiter.release(limiter.acquire(), throttled=True, pause_s=0.2)
    start = time.monotonic()
    limiter.release(limiter.acquire(), ok=True)
    assert time.monotonic() - start >= 0.19


def test_cancel_wakes_waiting_and_backing_off_calls():
    limiter = AdaptiveLimiter(ceiling=1)
    limiter.acquire()
    errors: list[BaseException] = []

    def wait(fn):
        try:
            fn()
        except Cancelled as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=(f,), daemon=True)
               for f in (limiter.acquire, lambda: limiter.sleep(30))]
    for t in threads:
        t.start()
    time.sleep(0.05)
    limiter.cancel()
    for t in threads:
        t.join(1.0)
    assert len(errors) == 2
    assert not isinstance(errors[0], Exception)  # no `except Exception` can turn it into a result


def test_backoff_is_jittered_exponential_capped_and_honours_retry_after():
    rng = random.Random(0)
    first = [backoff_s(0, 0.5, rng=rng) for _ in range(200)]
    third = [backoff_s(2, 0.5, rng=rng) for _ in range(200)]
    assert 0 <= min(first) and max(first) <= 0.5 and len(set(first)) > 150
    assert max(third) <= 2.0 and sum(third) / 200 > sum(first) / 200 * 2
    assert max(backoff_s(20, 0.5, rng=rng) for _ in range(50)) <= MAX_BACKOFF_S
    assert 3.0 <= backoff_s(0, 0.5, retry_after=3.0, rng=rng) <= 3.3
    assert backoff_s(5, 0.5, retry_after=0.0, rng=rng) == 0.0


@pytest.mark.parametrize(("error", "kind"), [
    (lm15.RateLimitError("slow down", status=429, retry_after=1.0), "throttled"),
    (lm15.ServerError("busy", status=503, retry_after=2.0), "throttled"),
    (lm15.ServerError("oops", status=500), "transient"),
    (lm15.TransportError("read timed out"), "transient"),
    (lm15.ProviderError("the reply is not JSON", status=200), "transient"),
    (lm15.AuthError("bad key", status=401), None),
    (lm15.InvalidRequestError("bad request", status=400), None),
    (lm15.ProviderError("teapot", status=418), None),
    (ValueError("a bug"), None),
])
def test_which_failures_are_retried(error, kind):
    assert failure_kind(error) == kind
