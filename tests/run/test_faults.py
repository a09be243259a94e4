"""Faults on the real HTTP path (dspy.LM -> ResilientEngine -> lm15 -> the fake server): 429 back-off,
retries on 500, timeouts and malformed bodies, and failures recorded as rejections, never placeholders."""

import threading
import time

import dspy
import pytest
from fake_openai import FakeOpenAIServer
from runs import endpoint_model, records, responder, run_config

from synth_empathy.config import ModelConfig
from synth_empathy.errors import RunError
from synth_empathy.lm import AdaptiveLimiter, build_lm
from synth_empathy.lm.usage import UsageMeter, metering, stage
from synth_empathy.run.generate import run_generate


@pytest.fixture
def server(fake_openai: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_openai.responder = responder
    return fake_openai


def model_config(server: FakeOpenAIServer, **settings) -> ModelConfig:
    return endpoint_model(server, **{"timeout_s": 2, **settings})


def ask(lm: dspy.LM, meter: UsageMeter | None = None) -> list[str]:
    with metering(meter), stage("seeker"):
        return lm(messages=[{"role": "user", "content": "I lost my job today"}])


def statuses(server: FakeOpenAIServer) -> list[int | None]:
    return [r.status for r in server.chat_requests]


def test_429_lowers_the_in_flight_bound_and_the_call_succeeds_after_retry_after(server):
    server.add_faults(("status", 429, {"Retry-After": "0.3"}))
    limiter = AdaptiveLimiter(ceiling=8)
    meter = UsageMeter()
    start = time.monotonic()
    assert ask(build_lm(model_config(server), limiter=limiter), meter)[0].endswith(".")
    first, second = server.chat_requests
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 0.29  # waited out Retry-After before asking again
    assert limiter.limit == 4 and limiter.cuts == 1 and limiter.in_flight == 0
    assert meter.snapshot()["seeker"].retries == 1
    assert time.monotonic() - start < 1.5


def test_while_rate_limited_no_other_call_starts_before_retry_after(server):
    server.latency_s = 0.05
    server.add_faults(("status", 429, {"Retry-After": "0.3"}))
    lm = build_lm(model_config(server), limiter=AdaptiveLimiter(ceiling=4))
    threads = [threading.Thread(target=lambda: [ask(lm) for _ in range(3)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    times = [r.time for r in server.chat_requests]
    answered = next(r.time for r in server.chat_requests if r.status == 429) + server.latency_s
    # Calls already on their way when the 429 came back may land just after it; then silence until Retry-After.
    assert not [t for t in times if answered + 0.03 < t < answered + 0.29]
    assert len(times) == 13 and max(times) >= answered + 0.29


def test_500s_are_retried_with_back_off_until_the_call_succeeds(server):
    server.add_faults(("status", 500), ("status", 502))
    meter = UsageMeter()
    ask(build_lm(model_config(server, retries=2)), meter)
    assert statuses(server) == [500, 502, 200]
    assert meter.snapshot()["seeker"].retries == 2 and meter.snapshot()["seeker"].p50_s is not None


def test_an_attempt_that_hangs_past_the_timeout_is_retried(server):
    server.add_faults(("hang", 3.0))
    start = time.monotonic()
    ask(build_lm(model_config(server, timeout_s=0.3)))
    assert time.monotonic() - start < 1.5
    assert [r.fault and r.fault[0] for r in server.chat_requests] == ["hang", None]


def test_a_malformed_200_body_is_retried(server):
    server.add_faults(("malformed",))
    ask(build_lm(model_config(server)))
    assert [r.fault for r in server.chat_requests] == [("malformed",), None]


def test_retries_have_a_budget_and_then_the_error_surfaces(server):
    server.add_faults(*[("status", 503)] * 3)
    with pytest.raises(dspy.utils.exceptions.LMServerError):
        ask(build_lm(model_config(server, retries=2)))
    assert statuses(server) == [503, 503, 503]


def test_a_500_that_repeats_word_for_word_ends_the_call_without_spending_the_budget(server):
    server.add_faults(*[("status", 500, {}, "failed to load the chat template")] * 4)
    meter = UsageMeter()
    with pytest.raises(dspy.utils.exceptions.LMServerError, match="chat template"):
        ask(build_lm(model_config(server, retries=3)), meter)
    assert statuses(server) == [500, 500]
    assert meter.snapshot()["seeker"].retries == 1


def test_500s_that_differ_keep_the_whole_retry_budget(server):
    server.add_faults(*[("status", 500, {}, f"worker {i} crashed") for i in range(3)])
    ask(build_lm(model_config(server, retries=3)))
    assert statuses(server) == [500, 500, 500, 200]


def test_a_bad_request_is_not_retried(server):
    server.add_faults(("status", 400))
    with pytest.raises(dspy.utils.exceptions.LMInvalidRequestError):
        ask(build_lm(model_config(server)))
    assert statuses(server) == [400]


# -- through the pipeline --------------------------------------------------------------------------


def test_a_dialogue_whose_call_fails_after_all_retries_is_rejected_with_the_error_never_a_placeholder(
        server, tmp_path):
    server.add_faults(("status", 500), ("status", 500))  # the first seed's first call, and its one retry
    manifest = run_generate(run_config(server, n=2, retries=1), tmp_path / "out")
    kept, rejected = records(tmp_path / "out")
    (failed,) = rejected
    assert failed.stage == "generate" and failed.reasons == ["generation_failed"]
    assert failed.detail.startswith("LMServerError: ") and "500" in failed.detail
    assert failed.dialogue is None and failed.seed is not None
    (good,) = kept
    assert all(t.text and t.text != "None" for t in good.turns)
    assert failed.id != good.id
    assert manifest.usage["seeker"].retries == 1


def test_when_every_dialogue_fails_the_run_fails_and_says_why(server, tmp_path):
    server.fault_rates = {"500": 1.0}
    with pytest.raises(RunError, match="all 2 dialogues.*LMServerError"):
        run_generate(run_config(server, n=2, retries=0), tmp_path / "out")
    kept, rejected = records(tmp_path / "out")
    assert not kept and len(rejected) == 2


def test_under_mixed_faults_every_seed_ends_as_exactly_one_record(server, tmp_path):
    server.add_faults(("status", 429, {"Retry-After": "0"}), ("status", 500), ("malformed",), ("hang", 1.0))
    server.fault_rates = {"429": 0.1, "500": 0.05, "malformed": 0.05, "hang": 0.02}
    server.rate_hang_s = 1.0
    cfg = run_config(server, 8, {"concurrency": 4}, retries=6, timeout_s=0.2)
    manifest = run_generate(cfg, tmp_path / "out")
    kept, rejected = records(tmp_path / "out")
    ids = [r.id for r in kept + rejected]
    assert len(ids) == 8 == len(set(ids))
    assert all(r.stage != "generate" for r in rejected), [r.detail for r in rejected]
    assert all(server.counters[k] for k in ("status_429", "status_500", "malformed", "hang"))
    assert sum(u.retries for u in manifest.usage.values()) == sum(r.status != 200 or r.fault is not None
                                                                  for r in server.chat_requests)
