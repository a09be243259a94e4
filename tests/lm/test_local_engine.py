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
