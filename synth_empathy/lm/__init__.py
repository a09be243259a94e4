"""The one LM layer: every model call in the project goes through an LM built here."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dspy
from dspy.clients.engines import LiteLLMEngine, LM15Engine
from dspy.clients.engines.lm15_engine import timeouts_for
from dspy.lm15 import RouterConfig

from synth_empathy.config import ModelConfig
from synth_empathy.errors import UserError
from synth_empathy.lm.adapter import PlainAdapter
from synth_empathy.lm.endpoint import EndpointEngine, EndpointKey, endpoint_state
from synth_empathy.lm.limiter import AdaptiveLimiter, Cancelled
from synth_empathy.lm.local import AsyncLlamaEngine, LlamaEngine, check_gguf, embedded_model_path
from synth_empathy.lm.resilient import ResilientEngine
from synth_empathy.lm.usage import UsageMeter

__all__ = ["AdaptiveLimiter", "Cancelled", "PlainAdapter", "ResilientEngine", "UsageMeter", "build_lm",
           "endpoint_key", "local_engine_stats", "model_label", "structured_output_mode"]

_OPENAI_CHAT = "openai-chat"  # lm15's provider id for "openai/<model>": the Chat Completions API


# Generator and judge on the same GGUF share one loaded model (and one batch scheduler).
_LOCAL_ENGINES: dict[tuple, LlamaEngine] = {}
_LOCAL_ENGINES_LOCK = threading.Lock()


def _local_engine(path: Path, config: ModelConfig) -> LlamaEngine:
    # The shipped Q4_1 model runs as a Q8_0 copy unless told otherwise; your own GGUF as it is.
    requantize = config.requantize or ("q8_0" if path == embedded_model_path() else "off")
    requantize = None if requantize == "off" else requantize
    with _LOCAL_ENGINES_LOCK:
        key = (path, config.n_ctx, config.repack, config.threads, requantize)
        if key not in _LOCAL_ENGINES:
            _LOCAL_ENGINES[key] = LlamaEngine(path, n_ctx=config.n_ctx, repack=config.repack,
                                              n_threads=config.threads, requantize=requantize)
        return _LOCAL_ENGINES[key]


def local_engine_stats() -> dict[str, dict] | None:
    """Per loaded local model (by file name): requests, prefix tokens reused, batch sizes; None if none ran."""
    with _LOCAL_ENGINES_LOCK:
        engines = list(_LOCAL_ENGINES.values())
    stats = {engine.model_path.name: engine.stats() for engine in engines if engine.stats()}
    return stats or None


def model_label(config: ModelConfig) -> str:
    """A human-readable model name for manifests and provenance (never a secret)."""
    if config.backend == "local":
        return f"local:{Path(config.model).name if config.model else embedded_model_path().name}"
    return f"{config.backend}:{config.model}"


def endpoint_key(config: ModelConfig) -> EndpointKey:
    """Which endpoint an LM calls: the LMs with one key share what was learnt about it (its structured-output
    mode, whether it takes `max_tokens`)."""
    return config.backend, config.api_base, config.model


def structured_output_mode(config: ModelConfig) -> str:
    """How structured answers reach the model, for the manifest: `grammar` in process; for an endpoint the
    forced mode, or the one detected so far (`json_schema` until a refusal says otherwise)."""
    if config.backend == "local":
        return "grammar"
    if config.structured_output != "auto":
        return config.structured_output
    return endpoint_state(endpoint_key(config)).mode


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
        engine = _local_engine(path, config)
        # In process there is nothing transient to retry; the engine still meters and honours a stop.
        return dspy.LM(
            f"local/{path.stem}", engine=ResilientEngine(engine, limiter=limiter, retries=0, rate_limit_retries=0),
            async_engine=AsyncLlamaEngine(engine), cache=False, temperature=temperature,
            max_tokens=config.max_tokens, num_retries=0,
        )
    if not config.model:
        raise UserError(f"--backend {config.backend} needs --model, the model name the endpoint serves")
    if config.backend == "litellm":
        inner, model = _litellm_engine(config), config.model
    else:
        inner, model = _openai_engine(config), (config.model if config.model.startswith("openai/")
                                                else f"openai/{config.model}")
    # OpenAI-compatible servers get `max_tokens` beside `max_completion_tokens`; LiteLLM maps the cap itself.
    inner = EndpointEngine(inner, endpoint_state(endpoint_key(config)), structured_output=config.structured_output,
                           send_max_tokens=config.backend == "openai")
    engine = ResilientEngine(inner, limiter=limiter, retries=config.retries,
                             rate_limit_retries=config.rate_limit_retries, backoff_s=config.backoff_s)
    return dspy.LM(model, engine=engine, cache=False, temperature=temperature, max_tokens=config.max_tokens,
                   num_retries=0)


def _openai_engine(config: ModelConfig) -> LM15Engine:
    key = os.environ.get(config.api_key_env)
    if not key:
        raise UserError(f"--backend openai needs an API key: set the environment variable {config.api_key_env}")
    # The engine dspy.LM would pick itself for these settings (lm15, Chat Completions), built here so
    # that ResilientEngine can own the retries; `timeouts_for` maps timeout_s as dspy.LM(timeout=) does.
    router = RouterConfig(api_keys={_OPENAI_CHAT: key},
                          base_urls={_OPENAI_CHAT: config.api_base} if config.api_base else None,
                          timeouts=timeouts_for(config.timeout_s))
    return LM15Engine(router)


def _litellm_engine(config: ModelConfig) -> LiteLLMEngine:
    """LiteLLM reaches the provider named in the model; it reads that provider's key variables itself
    (ANTHROPIC_API_KEY, GROQ_API_KEY, AWS_*, ...) unless --api-key-env names one."""
    # No fetch of LiteLLM's price list from GitHub at run time: its bundled copy is enough (and offline).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if "/" not in config.model:
        raise UserError(f"--backend litellm needs a model with its provider, like anthropic/{config.model} "
                        f"or groq/{config.model}")
    options: dict[str, object] = {"timeout": config.timeout_s}
    if config.api_base:
        options["api_base"] = config.api_base
    if "api_key_env" in config.model_fields_set:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise UserError(f"--backend litellm: set the environment variable {config.api_key_env}")
        options["api_key"] = key
    else:
        _check_provider_key(config)
    return LiteLLMEngine(model_type="chat", **options)


def _check_provider_key(config: ModelConfig) -> None:
    import litellm

    missing = litellm.validate_environment(config.model, api_base=config.api_base).get("missing_keys") or []
    # Only a missing key is certain to fail: a base URL has a default (Ollama) and AWS has other credential
    # sources (profiles, instance roles) that this check cannot see.
    keys = [name for name in missing if name.endswith("_API_KEY")]
    if keys:
        raise UserError(f"--backend litellm: {config.model} needs the environment variable {keys[0]} "
                        "(or name another with --api-key-env)")
