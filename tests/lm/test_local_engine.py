"""The in-process llama.cpp engine: how it loads the model (safe on every x86-64 CPU)."""

import pytest

from synth_empathy.config import ModelConfig
from synth_empathy.lm.local import LlamaEngine, embedded_model_path, model_param_overrides


def test_param_overrides_change_the_defaults_only_inside_the_block():
    from llama_cpp import llama_cpp as capi

    assert capi.llama_model_default_params().use_extra_bufts is True  # llama.cpp's own default
    with model_param_overrides(use_extra_bufts=False):
        assert capi.llama_model_default_params().use_extra_bufts is False
    assert capi.llama_model_default_params().use_extra_bufts is True


def test_repacking_is_off_by_default():
    assert ModelConfig().repack is False
    assert LlamaEngine(embedded_model_path()).repack is False


@pytest.mark.model
def test_embedded_model_loads_without_extra_buffer_types():
    # A VM that advertises AMX without enabling its tile state dies with SIGILL in llama.cpp's AMX matmul,
    # which lives in an extra buffer type: the model must be loaded with use_extra_bufts = false.
    engine = LlamaEngine(embedded_model_path(), n_ctx=512)
    llama = engine._model()
    assert llama.model_params.use_extra_bufts is False
    # More than a few prompt tokens: the AMX path is taken for batched matmuls, not for one token.
    prompt = "A friend wrote to say that the move went well and the new flat is bright. " * 6
    out = llama.create_completion(prompt, max_tokens=4, temperature=0)
    assert out["usage"]["prompt_tokens"] > 64
    assert out["usage"]["completion_tokens"] >= 1


@pytest.fixture(scope="module")
def engine():
    return LlamaEngine(embedded_model_path(), n_ctx=2048, max_batch=4)


def _request(user: str, **config):
    from dspy.lm15 import Config, Message, Request

    return Request(model="local", system="You are a warm, patient friend. Answer in one short sentence.",
                   messages=(Message.user(user),), config=Config(temperature=0.6, **config))


@pytest.mark.model
def test_concurrent_requests_are_batched_and_answer_well_formed(engine):
    import json
    from concurrent.futures import ThreadPoolExecutor

    schema = {"type": "object", "properties": {"mood": {"type": "string"}, "score": {"type": "integer", "minimum": 0,
              "maximum": 10}}, "required": ["mood", "score"], "additionalProperties": False}
    requests = [_request("My cat went missing yesterday.", max_tokens=24, stop=("\n",)),
                _request("Rate how I feel: I passed my exam!", max_tokens=60,
                         response_format={"type": "json_schema", "schema": schema}),
                _request("I moved to a new city and know nobody.", max_tokens=24, stop=("\n",))]
    before = engine.stats().get("batch_sizes", {})
    with ThreadPoolExecutor(3) as pool:
        prose, structured, prose2 = pool.map(engine.complete, requests)
    for reply in (prose, prose2):
        assert reply.message.text.strip()
        assert "\n" not in reply.message.text
        assert reply.usage.output_tokens >= 1
    # strict=False: llama-cpp-python's grammar for a bounded string lets raw control characters through.
    data = json.loads(structured.message.text, strict=False)
    assert set(data) == {"mood", "score"} and 0 <= data["score"] <= 10
    assert engine.stats()["grammar_checks"] >= structured.usage.output_tokens  # the lazy grammar path ran
    after = engine.stats()["batch_sizes"]
    assert any(size >= 2 and after[size] > before.get(size, 0) for size in after)


@pytest.mark.model
def test_a_repeated_system_prompt_is_reused(engine):
    first = engine.complete(_request("I lost my job today.", max_tokens=8))
    second = engine.complete(_request("My sister is getting married.", max_tokens=8))
    assert second.usage.cache_read_tokens >= 15  # the chat template's system block and more
    assert second.usage.cache_read_tokens < second.usage.input_tokens
    assert first.usage.input_tokens > 15
    assert engine.stats()["cache_hits"] >= 1
