"""Any provider through LiteLLM (`[model] backend = "litellm"`, the model names its provider), on the real path
dspy.LM -> ResilientEngine -> EndpointEngine -> dspy's LiteLLMEngine -> LiteLLM -> the fake server."""

import json

import pytest
from conftest import CATALOG
from fake_openai import FakeOpenAIServer, keeping_responder
from test_structured_output import formats, judge
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import ModelConfig
from synth_empathy.errors import UserError
from synth_empathy.lm import AdaptiveLimiter, build_lm, structured_output_mode
from synth_empathy.lm.usage import UsageMeter, metering, stage

# hosted_vllm/ is LiteLLM's door to a vLLM server: an OpenAI-shaped wire (so the fake server can answer it)
# with a provider key variable of its own, HOSTED_VLLM_API_KEY, that LiteLLM reads itself.
MODEL = "hosted_vllm/served-model"
KEY_ENV = "HOSTED_VLLM_API_KEY"


@pytest.fixture
def server(fake_openai: FakeOpenAIServer, monkeypatch) -> FakeOpenAIServer:
    monkeypatch.setenv(KEY_ENV, "vllm-secret-789")
    fake_openai.responder = keeping_responder
    return fake_openai


def litellm_config(server: FakeOpenAIServer, **settings) -> ModelConfig:
    return ModelConfig(**{"backend": "litellm", "model": MODEL, "api_base": server.base_url, "backoff_s": 0.01,
                          "timeout_s": 5, **settings})


def test_a_litellm_call_takes_the_providers_key_and_the_limiter_retries_and_meter(server):
    server.add_faults(("status", 500))
    limiter, meter = AdaptiveLimiter(ceiling=4), UsageMeter()
    lm = build_lm(litellm_config(server), limiter=limiter)
    with metering(meter), stage("seeker"):
        (reply,) = lm(messages=[{"role": "user", "content": "I lost my job today"}])
    assert reply.endswith(".")
    assert [r.status for r in server.chat_requests] == [500, 200]
    assert {r.body["model"] for r in server.chat_requests} == {"served-model"}
    assert {r.api_key for r in server.chat_requests} == {"vllm-secret-789"}
    usage = meter.snapshot()["seeker"]
    assert usage.retries == 1 and usage.calls == 1 and usage.input_tokens > 0
    assert limiter.peak_in_flight == 1 and limiter.in_flight == 0


def test_the_structured_output_fallback_applies_to_litellm_routes_too(server):
    server.quirks = {"json_schema_400"}
    config = litellm_config(server)
    assert judge(build_lm(config)).sensibility >= 0
    assert formats(server) == ["json_schema", "json_object_schema"]
    assert structured_output_mode(config) == "json_object_schema"


def test_a_named_key_variable_wins_over_the_providers_own(server, monkeypatch):
    monkeypatch.setenv("TEAM_VLLM_KEY", "team-key-456")
    build_lm(litellm_config(server, api_key_env="TEAM_VLLM_KEY"))(messages=[{"role": "user", "content": "hi"}])
    assert server.chat_requests[0].api_key == "team-key-456"


def test_a_model_without_its_provider_is_bad_input():
    with pytest.raises(UserError, match="anthropic/claude"):
        build_lm(ModelConfig(backend="litellm", model="claude"))


def test_a_missing_provider_key_is_one_sentence_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--backend", "litellm",
                                      "--model", "anthropic/claude-3-5-haiku-latest"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "ANTHROPIC_API_KEY" in result.output
    assert "Traceback" not in result.output


def test_generate_through_litellm_writes_a_corpus_and_never_the_key(server, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                   "[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["generate", "-n", "2", "--out", str(out), "--config", str(cfg),
                                      "--backend", "litellm", "--model", MODEL, "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"] == {"generator": f"litellm:{MODEL}", "judge": f"litellm:{MODEL}"}
    assert manifest["counts"]["kept"] == 2
    for path in out.iterdir():
        assert "vllm-secret-789" not in path.read_text(), path.name
