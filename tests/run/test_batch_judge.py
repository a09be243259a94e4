"""judge --batch / filter --batch: the Batch API path asks what the online judge asks and writes what it writes."""

import json
import zlib

import pytest
from builders import GOOD_TEXTS, make_dialogue
from fake_openai import default_responder, extract_schema
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import load_config
from synth_empathy.errors import RunError
from synth_empathy.lm import UsageMeter, build_lm
from synth_empathy.run.batch_judge import judge_by_batch
from synth_empathy.run.corpus_filter import judge_all

runner = CliRunner()


def varied_judge(body: dict) -> str:
    """Scores that differ by conversation (the same for the same prompt), so equal results mean equal prompts."""
    data = json.loads(default_responder(body))
    if extract_schema(body.get("response_format")) and "sensibility" in data:
        h = zlib.crc32(json.dumps(body["messages"], sort_keys=True).encode())
        data.update(sensibility=h % 11, rationality=(h >> 4) % 11, emotional_reactions=h % 3,
                    sentiment_attenuation=bool(h & 1), rationale=f"note {h % 97}")
    return json.dumps(data)


@pytest.fixture
def server(fake_openai):
    fake_openai.responder = varied_judge
    fake_openai.batch_polls = 3
    return fake_openai


def _config(server, **judge):
    return load_config(None, {"model": {"backend": "openai", "model": "judge-m", "api_base": server.base_url,
                                        "backoff_s": 0.01, "timeout_s": 5}, "judge": {"samples": 2, **judge},
                              "prices": {"judge-m": {"input": 2.0, "output": 4.0}}})


def _dialogues():
    return [make_dialogue(GOOD_TEXTS[: 2 + i % 3] + [f"Thank you, {i} times over."], ident=f"d{i}") for i in range(5)]


def test_batch_judge_equals_the_online_judge_on_the_same_replies(server, tmp_path):
    cfg = _config(server)
    online = judge_all(_dialogues(), cfg, build_lm(cfg.judge_model()))
    online_bodies = [r.body for r in server.chat_requests]
    meter = UsageMeter()
    batch = judge_by_batch(_dialogues(), cfg, tmp_path / "batch.json", meter=meter, poll_s=0)
    assert [o.model_dump() for o in batch] == [o.model_dump() for o in online]
    assert len({o.scores.sensibility for o in batch}) > 1  # the scores differ by dialogue
    lines = [json.loads(x) for x in next(iter(f["content"] for f in server.files.values()
                                              if f["object"]["purpose"] == "batch")).splitlines()]
    assert [(line["body"]["messages"], line["body"]["response_format"]) for line in lines] == \
           [(b["messages"], b["response_format"]) for b in online_bodies]
    assert {line["url"] for line in lines} == {"/v1/chat/completions"} and len(lines) == 10
    assert meter.snapshot()["judge"].calls == 10
    assert meter.snapshot()["judge"].input_tokens == sum(r.usage["prompt_tokens"] for r in server.chat_requests)
    state = json.loads((tmp_path / "batch.json").read_text())
    assert state["status"] == "completed" and state["batch_id"] in server.batches


def test_a_kill_after_submission_resumes_the_same_batch(server, tmp_path):
    cfg, state = _config(server), tmp_path / "batch.json"

    def killed(status, counts):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        judge_by_batch(_dialogues(), cfg, state, poll_s=0, on_status=killed)
    submitted = json.loads(state.read_text())["batch_id"]
    assert server.batches[submitted]["status"] in ("validating", "in_progress")
    seen = []
    outcomes = judge_by_batch(_dialogues(), cfg, state, poll_s=0, on_status=lambda s, c: seen.append(s))
    assert server.counters["batches_created"] == 1 and server.counters["files_uploaded"] == 1
    assert json.loads(state.read_text())["batch_id"] == submitted and seen[-1] == "completed"
    assert all(o.scores is not None for o in outcomes)


def test_a_state_of_other_requests_is_bad_input(server, tmp_path):
    from synth_empathy.errors import UserError

    judge_by_batch(_dialogues()[:2], _config(server), tmp_path / "batch.json", poll_s=0)
    with pytest.raises(UserError, match="holds batch .* of other requests"):
        judge_by_batch(_dialogues(), _config(server), tmp_path / "batch.json", poll_s=0)


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_batch_is_one_clear_error_and_a_rerun_submits_anew(server, tmp_path, outcome):
    server.batch_outcome = outcome
    state = tmp_path / "batch.json"
    with pytest.raises(RunError, match=rf"^batch batch_fake\d+ {outcome}.*nothing was scored"):
        judge_by_batch(_dialogues(), _config(server), state, poll_s=0)
    assert not state.exists()
    server.batch_outcome = "completed"
    assert all(o.scores for o in judge_by_batch(_dialogues(), _config(server), state, poll_s=0))
    assert server.counters["batches_created"] == 2


def _cli_config(tmp_path, server) -> str:
    path = tmp_path / "run.toml"
    path.write_text(f'[model]\nbackend = "openai"\nmodel = "judge-m"\napi_base = "{server.base_url}"\n'
                    "[judge]\nmin_sensibility = 4\nmin_rationality = 4\n"
                    '[prices.judge-m]\ninput = 2.0\noutput = 4.0\n')
    return str(path)


def test_filter_batch_writes_what_the_online_filter_writes_at_half_the_judge_price(server, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(d.model_dump_json() + "\n" for d in _dialogues()))
    cfg = _cli_config(tmp_path, server)
    online = runner.invoke(app, ["filter", str(source), "--out", str(tmp_path / "online"), "--config", cfg])
    batch = runner.invoke(app, ["filter", str(source), "--out", str(tmp_path / "batch"), "--config", cfg,
                                "--batch", "--batch-poll", "0"])
    assert online.exit_code == 0 and batch.exit_code == 0, batch.output
    for name in ("dialogues.jsonl", "rejected.jsonl"):
        strip = [{k: v for k, v in json.loads(x).items() if k != "provenance"}
                 for x in (tmp_path / "online" / name).read_text().splitlines()]
        assert strip == [{k: v for k, v in json.loads(x).items() if k != "provenance"}
                         for x in (tmp_path / "batch" / name).read_text().splitlines()]
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("online", "batch")]
    assert manifests[1]["usage"]["judge"]["cost_usd"] == pytest.approx(manifests[0]["usage"]["judge"]["cost_usd"] / 2,
                                                                      abs=2e-6)
    assert (tmp_path / "batch" / "batch.json").exists()


def test_judge_batch_cli_failed_batch_is_one_sentence_exit_1(server, tmp_path):
    server.batch_outcome = "failed"
    source = tmp_path / "in.jsonl"
    source.write_text("".join(d.model_dump_json() + "\n" for d in _dialogues()))
    result = runner.invoke(app, ["judge", str(source), "--out", str(tmp_path / "scores.jsonl"), "--config",
                                 _cli_config(tmp_path, server), "--batch", "--batch-poll", "0"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "failed: fake: the input file is not valid" in errors[0]
    assert "Traceback" not in result.output
