"""The one LM layer: every model call in the project goes through an LM built here."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dspy
from dspy.clients.engines import LM15Engine
from dspy.clients.engines.lm15_engine import timeouts_for
from dspy.lm15 import RouterConfig

from synth_empathy.config import ModelConfig
from synth_empathy.errors import UserError
from synth_empathy.lm.adapter import PlainAdapter
from synth_empathy.lm.limiter import AdaptiveLimiter, Cancelled
from synth_empathy.lm.local import AsyncLlamaEngine, LlamaEngine, check_gguf, embedded_model_path
from synth_empathy.lm.resilient import ResilientEngine
from synth_empathy.lm.usage import UsageMeter

__all__ = ["AdaptiveLimiter", "Cancelled", "PlainAdapter", "ResilientEngine", "UsageMeter", "build_lm",
           "model_label"]

_OPENAI_CHAT = "openai-chat"  # lm15's provider id for "openai/<model>": the Chat Completions API


@functools.lru_cache(maxsize=4)
def _local_engine(path: Path, n_ctx: int) -> LlamaEngine:
    # Generator and judge on the same GGUF share one loaded model.
    return LlamaEngine(path, n_ctx=n_ctx)


def model_label(config: ModelConfig) -> str:
    """A human-readable model name for manifests and provenance (never a secret)."""
    if config.backend == "local":
        return f"local:{Path(config.model).name if config.model else embedded_model_path().name}"
    return f"openai:{config.model}"


def build_lm(config: ModelConfig, temperature: float | None = None,
             limiter: AdaptiveLimiter | None = None) -> dspy.LM:
    """A dspy.LM for the configured backend; the API key is read from the environment, never stored.

    Every attempt goes through a ResilientEngine: `limiter` (shared by the LMs that call one endpoint)
    bounds the attempts in flight, and it retries per `config` (retries, rate_limit_retries, backoff_s)
    with each attempt bounded by `config.timeout_s`.
    """
    temperature = config.temperature if temperature is None else temperature
    if config.backend == "local":
        path = Path(config.model).expanduser().resolve() if config.model else embedded_model_path()
        if not path.is_file():
            raise UserError(f"model file {path} does not exist (with --backend local, --model is a .gguf path)")
        check_gguf(path)
        engine = _local_engine(path, config.n_ctx)
        # In process there is nothing transient to retry; the engine still meters and honours a stop.
        return dspy.LM(
            f"local/{path.stem}", engine=ResilientEngine(engine, limiter=limiter, retries=0, rate_limit_retries=0),
            async_engine=AsyncLlamaEngine(engine), cache=False, temperature=temperature,
            max_tokens=config.max_tokens, num_retries=0,
        )
    if not config.model:
        raise UserError("--backend openai needs --model, the model name the endpoint serves")
    key = os.environ.get(config.api_key_env)
    if not key:
        raise UserError(f"--backend openai needs an API key: set the environment variable {config.api_key_env}")
    model = config.model if config.model.startswith("openai/") else f"openai/{config.model}"
    # The engine dspy.LM would pick itself for these settings (lm15, Chat Completions), built here so
    # that ResilientEngine can own the retries; `timeouts_for` maps timeout_s as dspy.LM(timeout=) does.
    router = RouterConfig(api_keys={_OPENAI_CHAT: key},
                          base_urls={_OPENAI_CHAT: config.api_base} if config.api_base else None,
                          timeouts=timeouts_for(config.timeout_s))
    engine = ResilientEngine(LM15Engine(router), limiter=limiter, retries=config.retries,
                             rate_limit_retries=config.rate_limit_retries, backoff_s=config.backoff_s)
    return dspy.LM(model, engine=engine, cache=False, temperature=temperature, max_tokens=config.max_tokens,
                   num_retries=0)
