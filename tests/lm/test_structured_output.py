"""Structured output against servers that take less than OpenAI's json_schema, on the real path
(dspy.LM -> ResilientEngine -> EndpointEngine -> lm15 -> the fake server's quirk modes)."""

import json

import dspy
import pytest
from conftest import CATALOG
from fake_openai import JSON_SCHEMA_400, FakeOpenAIServer, keeping_responder
from runs import endpoint_model

from synth_empathy.config import ModelConfig, load_config
from synth_empathy.lm import PlainAdapter, build_lm, structured_output_mode
from synth_empathy.lm.usage import UsageMeter, metering, stage
from synth_empathy.programs.judge import JudgeDialogue
from synth_empathy.run.generate import run_generate


@pytest.fixture
def server(fake_openai: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_openai.responder = keeping_responder
    return fake_openai


def model_config(server: FakeOpenAIServer, **settings) -> ModelConfig:
    return endpoint_model(server, **settings)


def judge(lm: dspy.LM, meter: UsageMeter | None = None) -> dspy.Prediction:
    with metering(meter), stage("judge"), dspy.context(lm=lm, adapter=PlainAdapter()):
        return dspy.Predict(JudgeDialogue)(conversation="Seeker: I lost my job.\nSupporter: That sounds hard.")


def formats(server: FakeOpenAIServer) -> list[str | None]:
    """What each request asked for: json_schema, json_object_schema, json_object or None (prompt)."""
    out = []
    for r in server.chat_requests:
        fmt = r.body.get("response_format")
        kind = None if fmt is None else fmt["type"]
        out.append("json_object_schema" if kind == "json_object" and "schema" in fmt else kind)
    return out


def system_text(request) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "system")


@pytest.mark.parametrize(("quirk", "status"), [("json_schema_400", 400), ("json_schema_500", 500)])
def test_a_refused_json_schema_falls_back_to_json_object_with_the_schema_and_stays_there(server, quirk, status):
    server.quirks = {quirk}
    config = model_config(server)
    meter = UsageMeter()
    assert 0 <= judge(build_lm(config), meter).sensibility <= 10
    assert [r.status for r in server.chat_requests] == [status, 200]
    assert formats(server) == ["json_schema", "json_object_schema"]
    schema = server.chat_requests[1].body["response_format"]["schema"]
    assert "sensibility" in schema["properties"]
    # Another LM of the same endpoint (the judge beside the generator) starts where the first one got to.
    judge(build_lm(config), meter)
    assert formats(server)[2:] == ["json_object_schema"]
    assert structured_output_mode(config) == "json_object_schema"
    assert meter.snapshot()["judge"].retries == 1  # the refused attempt, once, not a whole retry budget


def test_a_server_refusing_every_response_format_gets_the_schema_in_the_prompt(server):
    server.quirks = {"no_response_format"}
    config = model_config(server)
    out = judge(build_lm(config))
    assert isinstance(out.conflict_avoidance, bool)
    assert formats(server) == ["json_schema", "json_object_schema", "json_object", None]
    assert [r.status for r in server.chat_requests] == [400, 400, 400, 200]
    last = server.chat_requests[-1]
    assert '"sensibility"' in system_text(last) and "JSON schema" in system_text(last)
    assert structured_output_mode(config) == "prompt"


def test_a_server_that_ignores_the_schema_gets_one_corrective_retry_with_the_schema(server):
    server.quirks = {"schema_ignored"}
    out = judge(build_lm(model_config(server)))
    assert out.sensibility >= 0
    first, second = server.chat_requests
    assert first.status == second.status == 200
    correction = second.messages[-1]["content"]
    assert second.messages[-2]["role"] == "assistant" and "does not fit" in correction
    assert '"rationale"' in correction  # the schema itself, so a model that was never sent it can follow it


def test_an_answer_that_still_does_not_fit_after_the_correction_fails_the_call(server):
    server.responder = lambda body: "I would rate this conversation quite highly."
    with pytest.raises(dspy.utils.exceptions.AdapterParseError):
        judge(build_lm(model_config(server)))
    assert len(server.chat_requests) == 2


def test_a_forced_mode_is_used_from_the_first_call_and_never_left(server):
    server.quirks = {"json_schema_400"}
    judge(build_lm(model_config(server, structured_output="json_object")))
    (request,) = server.chat_requests
    assert formats(server) == ["json_object"] and '"sensibility"' in system_text(request)
    with pytest.raises(dspy.utils.exceptions.LMInvalidRequestError, match=JSON_SCHEMA_400):
        judge(build_lm(model_config(server, structured_output="json_schema")))
    assert formats(server)[1:] == ["json_schema"]


def test_max_tokens_is_sent_beside_max_completion_tokens_for_servers_that_ignore_the_latter(server):
    server.quirks = {"max_completion_tokens_ignored"}
    server.responder = lambda body: " ".join(["word"] * 300)
    lm = build_lm(model_config(server, max_tokens=40))
    (reply,) = lm(messages=[{"role": "user", "content": "Tell me a long story."}])
    body = server.chat_requests[0].body
    assert body["max_tokens"] == body["max_completion_tokens"] == 40
    assert len(reply.split()) == 40


def test_a_server_that_refuses_max_tokens_gets_max_completion_tokens_alone_from_then_on(server):
    refusal = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
    server.add_faults(("status", 400, {}, refusal))
    lm = build_lm(model_config(server))
    lm(messages=[{"role": "user", "content": "hi"}])
    lm(messages=[{"role": "user", "content": "hi again"}])
    assert [r.status for r in server.chat_requests] == [400, 200, 200]
    assert ["max_tokens" in r.body for r in server.chat_requests] == [True, False, False]
    assert all(r.body["max_completion_tokens"] == 120 for r in server.chat_requests)


def test_a_generate_run_against_a_llama_cpp_like_server_succeeds_and_records_the_mode(server, tmp_path):
    server.quirks = {"json_schema_500"}
    config = load_config(None, {
        "n": 2, "personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios"),
        "dialogue": {"min_turns": 1, "max_turns": 1, "critique_rounds": 0},
        "model": {"backend": "openai", "model": "m", "api_base": server.base_url, "timeout_s": 5},
    })
    manifest = run_generate(config, tmp_path / "out")
    assert manifest.counts["kept"] == 2
    assert manifest.structured_output == {"generator": "json_object_schema", "judge": "json_object_schema"}
    assert [r.status for r in server.chat_requests].count(500) == 1  # detected once for the whole run
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["structured_output"]["judge"] == "json_object_schema"
