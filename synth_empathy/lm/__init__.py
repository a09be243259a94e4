"""The one LM layer: every model call in the project goes through an LM built here."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dspy

from synth_empathy.config import ModelConfig
from synth_empathy.errors import UserError
from synth_empathy.lm.adapter import PlainAdapter
from synth_empathy.lm.local import AsyncLlamaEngine, LlamaEngine, embedded_model_path
from synth_empathy.lm.usage import UsageMeter

__all__ = ["PlainAdapter", "UsageMeter", "build_lm", "model_label"]


@functools.lru_cache(maxsize=4)
def _local_engine(path: Path, n_ctx: int) -> LlamaEngine:
    # Generator and judge on the same GGUF share one loaded model.
    return LlamaEngine(path, n_ctx=n_ctx)


def model_label(config: ModelConfig) -> str:
    """A human-readable model name for manifests and provenance (never a secret)."""
    if config.backend == "local":
        return f"local:{Path(config.model).name if config.model else embedded_model_path().name}"
    return f"openai:{config.model}"


def build_lm(config: ModelConfig, temperature: float | None = None) -> dspy.LM:
    """A dspy.LM for the configured backend; the API key is read from the environment, never stored."""
    temperature = config.temperature if temperature is None else temperature
    if config.backend == "local":
        path = Path(config.model).expanduser().resolve() if config.model else embedded_model_path()
        if not path.is_file():
            raise UserError(f"model file {path} does not exist (with --backend local, --model is a .gguf path)")
        engine = _local_engine(path, config.n_ctx)
        return dspy.LM(
            f"local/{path.stem}", engine=engine, async_engine=AsyncLlamaEngine(engine), cache=False,
            temperature=temperature, max_tokens=config.max_tokens, num_retries=0,
        )
    if not config.model:
        raise UserError("--backend openai needs --model, the model name the endpoint serves")
    key = os.environ.get(config.api_key_env)
    if not key:
        raise UserError(f"--backend openai needs an API key: set the environment variable {config.api_key_env}")
    model = config.model if config.model.startswith("openai/") else f"openai/{config.model}"
    return dspy.LM(
        model, api_base=config.api_base, api_key=key, cache=False, temperature=temperature,
        max_tokens=config.max_tokens, num_retries=config.retries, timeout=config.timeout_s,
    )
