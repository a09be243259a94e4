"""Accounting in the manifest (calls, tokens, retries, latency, cost) and progress on a terminal or a log."""

import io

import pytest
from rich.console import Console
from runs import responder, run_config, scripted_run

from synth_empathy.run.generate import run_generate
from synth_empathy.run.progress import BarProgress, LogProgress, progress_for

STAGES = {"seeker", "supporter", "judge"}  # critique_rounds = 0: no critique, no revise


@pytest.fixture
def server(fake_openai):
    fake_openai.responder = responder
    return fake_openai


def test_manifest_accounts_calls_tokens_retries_latency_and_cost_per_stage(server, tmp_path):
    server.add_faults(("status", 500))
    cfg = run_config(server, 2, {"prices": {"m": {"input": 1.0, "output": 2.0}}})
    manifest = run_generate(cfg, tmp_path / "out")
    usage = manifest.usage
    assert set(usage) == STAGES
    assert sum(u.calls for u in usage.values()) == sum(r.status == 200 for r in server.chat_requests)
    assert sum(u.retries for u in usage.values()) == 1
    for u in usage.values():
        assert u.input_tokens > 0 and 0 < u.p50_s <= u.p95_s
        assert u.cost_usd == round((u.input_tokens * 1.0 + u.output_tokens * 2.0) / 1e6, 6)
    assert manifest.cost_usd == pytest.approx(sum(u.cost_usd for u in usage.values()))
    tokens = sum(u.input_tokens + u.output_tokens for u in usage.values())
    assert manifest.tokens_per_kept == round(tokens / manifest.counts["kept"], 1)


def test_cost_is_unknown_not_invented_without_a_price(server, tmp_path):
    cfg = run_config(server, 1, {"prices": {"another-model": {"input": 1.0, "output": 1.0}}})
    manifest = run_generate(cfg, tmp_path / "out")
    assert manifest.cost_usd is None and all(u.cost_usd is None for u in manifest.usage.values())


def test_a_priced_judge_alone_gives_its_stage_a_cost_but_the_run_none(server, tmp_path):
    cfg = run_config(server, 1, {"judge": {"model": "judge-m"}, "prices": {"judge-m": {"input": 5.0, "output": 5.0}}})
    manifest = run_generate(cfg, tmp_path / "out")
    assert manifest.usage["judge"].cost_usd > 0 and manifest.usage["seeker"].cost_usd is None
    assert manifest.cost_usd is None


def test_cached_prompt_tokens_are_counted_per_stage_and_priced_at_their_own_rate(server, tmp_path):
    server.quirks = {"cached_prefix"}  # the fake reports the words a prompt shares with an earlier one
    price = {"input": 2.0, "cached_input": 0.5, "output": 4.0}
    manifest = run_generate(run_config(server, 3, {"prices": {"m": price}}), tmp_path / "out")
    reported = sum(r.usage["prompt_tokens_details"]["cached_tokens"] for r in server.chat_requests if r.usage)
    usage = manifest.usage
    assert sum(u.cached_input_tokens for u in usage.values()) == reported > 0
    for u in usage.values():
        assert 0 <= u.cached_input_tokens <= u.input_tokens
        assert u.cached_share == round(u.cached_input_tokens / u.input_tokens, 4)
        fresh = u.input_tokens - u.cached_input_tokens
        assert u.cost_usd == round((fresh * 2.0 + u.cached_input_tokens * 0.5 + u.output_tokens * 4.0) / 1e6, 6)
    # Every judge prompt opens with the same instructions: most of it is a cached prefix after the first.
    assert usage["judge"].cached_share > 0.3


def test_resumed_runs_add_up_their_usage(tmp_path):
    first = scripted_run(tmp_path, 2)
    second = scripted_run(tmp_path, 3)
    assert second.usage["judge"].calls == first.usage["judge"].calls + 1
    assert second.timings["generate_s"] >= first.timings["generate_s"]


def test_plain_log_lines_when_not_a_terminal(tmp_path):
    stream = io.StringIO()
    progress = progress_for(3, Console(file=stream, force_terminal=False))
    assert isinstance(progress, LogProgress)
    scripted_run(tmp_path, 2, progress=progress)
    scripted_run(tmp_path, 3, progress=progress_for(3, Console(file=stream, force_terminal=False)))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/3] d") and " kept | kept 1, rejected 0 | " in lines[0]
    assert "calls/s | ETA " in lines[0]
    assert lines[2] == "resuming: 2 of 3 seeds already written (2 kept, 0 rejected)"
    assert lines[3].startswith("[3/3] ") and lines[3].endswith("ETA 0s")


def test_a_live_bar_on_a_terminal(tmp_path):
    stream = io.StringIO()
    progress = progress_for(2, Console(file=stream, force_terminal=True, width=120))
    assert isinstance(progress, BarProgress)
    scripted_run(tmp_path, 2, progress=progress)
    out = stream.getvalue()
    assert "2/2" in out and "kept 2, rejected 0" in out and "calls/s" in out
