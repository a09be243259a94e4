"""Continuous batching over one llama.cpp context: many requests decoded together, evaluated prefixes reused.

Generation on a CPU is memory-bound: one decode step reads every weight once whether it advances one
sequence or eight, so requests from several threads are collected by one scheduler thread and advanced
together, each in its own KV sequence (one `llama_decode` call per step). Every finished sequence stays in
the (unified) KV cache as a cached prompt; a new request copies the longest common prefix of any cached or
running sequence (`llama_memory_seq_cp` shares the cells, nothing is copied) and evaluates only the rest.
That pays because prompts are laid out stable part first: a predictor's instructions and demos, then the
input.

The scheduler knows llama.cpp only through a `Backend`, so its logic is tested without a model.
"""

from __future__ import annotations

import collections
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

KV_FULL = 1  # llama_decode: no KV slot for the batch; the memory state is as before the call
# A new job waits for a running job's prompt when they share at least this many tokens (see _next_admissible).
MIN_SHARED_WAIT = 32


class Backend(Protocol):
    """What the scheduler needs from llama.cpp (see LlamaCppBackend in local.py)."""

    n_ctx: int  # KV cells shared by all sequences
    n_batch: int  # most tokens one decode call takes
    n_seq: int  # sequence ids 0..n_seq-1

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> int:
        """(token, position, seq id, wants logits) per entry; 0, or KV_FULL; raises on a fatal error."""

    def sample(self, sampler: Any, index: int) -> int:
        """Sample (and accept) a token from the logits of batch entry `index`."""

    def make_sampler(self, sampling: Any) -> Any: ...

    def is_eog(self, token: int) -> bool: ...

    def piece(self, token: int) -> bytes: ...

    def seq_cp(self, src: int, dst: int, n: int) -> None:
        """Positions [0, n) of `src` become part of `dst` too."""

    def seq_rm(self, seq: int, p0: int) -> None:
        """Drop positions [p0, end) of `seq`."""


class ContextOverflow(ValueError):
    """A prompt does not fit the local model's context."""


@dataclass(eq=False)
class Job:
    """One completion: prompt tokens in, text and counts out."""

    prompt: list[int]
    sampling: Any  # handed to Backend.make_sampler
    max_tokens: int
    stop: list[bytes] = field(default_factory=list)
    # Filled in by the scheduler.
    text: bytes = b""
    output: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    reused: int = 0  # prompt tokens taken from a cached prefix instead of evaluated
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Scheduler state.
    seq: int = -1
    kv: list[int] = field(default_factory=list)  # the tokens this job's sequence holds, positions 0..len-1
    sampler: Any = None
    next_token: int | None = None  # sampled, not yet decoded


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class BatchScheduler:
    """Runs Jobs from any thread on one Backend; `run(job)` blocks until the job is finished.

    Args:
        backend: the llama.cpp context (or a fake one in tests).
        max_batch: most requests decoded together; 1 = one at a time (still with prefix reuse).
        reuse: copy cached prefixes into new sequences; False evaluates every prompt from scratch.
        max_request_tokens: most prompt + answer tokens of one request (default: the whole KV cache).
    """

    def __init__(self, backend: Backend, max_batch: int = 8, reuse: bool = True,
                 max_request_tokens: int | None = None) -> None:
        self.backend = backend
        self.max_request_tokens = min(max_request_tokens or backend.n_ctx, backend.n_ctx)
        self.max_batch = max(1, min(max_batch, backend.n_seq))
        self.reuse = reuse
        self._cond = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._active: list[Job] = []
        # Idle sequences holding a finished job's tokens, least recently used first.
        self._cached: collections.OrderedDict[int, list[int]] = collections.OrderedDict()
        self._free = list(range(backend.n_seq - 1, -1, -1))
        self._thread: threading.Thread | None = None
        self._counts: Counter[str] = Counter()
        self._batch_sizes: Counter[int] = Counter()
        self._seconds: Counter[str] = Counter()

    # -- callers' side ------------------------------------------------------------------------

    def run(self, job: Job) -> Job:
        limit = self.max_request_tokens
        if len(job.prompt) >= limit:
            raise ContextOverflow(f"a prompt of {len(job.prompt)} tokens does not fit the local model's context of "
                                  f"{limit} tokens; raise [model] n_ctx or shorten the input")
        if not job.prompt:
            raise ValueError("empty prompt")
        # As llama-cpp-python does: the answer is cut where the context ends.
        job.max_tokens = max(1, min(job.max_tokens, limit - len(job.prompt)))
        with self._cond:
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="llama-batch", daemon=True)
                self._thread.start()
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job

    def stats(self) -> dict[str, Any]:
        """Requests, prompt tokens evaluated vs reused from cached prefixes, decode calls, batch sizes."""
        with self._cond:
            counts = dict(self._counts)
            sizes = dict(sorted(self._batch_sizes.items()))
            seconds = {key: round(value, 2) for key, value in sorted(self._seconds.items())}
        steps = sum(sizes.values())
        return {
            "requests": counts.get("requests", 0),
            "prompt_tokens": counts.get("prompt_tokens", 0),
            "prefix_tokens_reused": counts.get("reused", 0),
            "cache_hits": counts.get("hits", 0),
            "output_tokens": counts.get("output_tokens", 0),
            "decode_calls": steps,
            "batch_sizes": sizes,  # sequences advanced per decode call -> how many calls
            "mean_batch_size": round(sum(k * v for k, v in sizes.items()) / steps, 2) if steps else None,
            "evicted": counts.get("evicted", 0),
            "preempted": counts.get("preempted", 0),
            **seconds,
        }

    # -- the scheduler thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._active:
                    self._cond.wait()
                while len(self._active) < self.max_batch and (job := self._next_admissible()) is not None:
                    try:
                        self._admit(job)
                    except BaseException as exc:  # noqa: BLE001 - reported to the caller of run()
                        self._finish(job, error=exc)
                if not self._active:
                    continue
            try:
                self._step()
            except BaseException as exc:  # noqa: BLE001 - a fatal decode error fails what is in flight
                for job in list(self._active):
                    self._finish(job, error=exc)

    def _next_admissible(self) -> Job | None:
        """The first pending job not waiting for a prefix that a job in flight is evaluating, taken off the queue.

        Dialogues start together, so their first calls to one predictor arrive together: admitted at once, each
        would evaluate the same instructions and demos. A job whose prompt shares more with a running job's
        prompt than with anything evaluated yet waits until that prompt is evaluated, then copies it."""
        for job in self._pending:
            if not self._waits_for_prefix(job):
                self._pending.remove(job)
                return job
        return None

    def _waits_for_prefix(self, job: Job) -> bool:
        if not self.reuse:
            return False
        evaluating = [j for j in self._active if len(j.kv) < len(j.prompt)]
        if not evaluating:
            return False
        coming = max(common_prefix(j.prompt, job.prompt) for j in evaluating)
        return coming >= MIN_SHARED_WAIT and coming > self._best_prefix(job.prompt)[1]

    def _best_prefix(self, prompt: list[int]) -> tuple[int, int]:
        """The sequence (cached or in flight) holding the longest evaluated prefix of `prompt`, and its length;
        (-1, 0) when none shares a token."""
        source, shared = -1, 0
        for seq, kv in [*self._cached.items(), *((j.seq, j.kv) for j in self._active)]:
            n = common_prefix(kv, prompt)
            if n > shared:
                source, shared = seq, n
        return source, shared

    def _admit(self, job: Job) -> None:
        sampler = self.backend.make_sampler(job.sampling)  # first: a bad grammar fails before a sequence is taken
        source, shared = self._best_prefix(job.prompt) if self.reuse else (-1, 0)
        # At least one prompt token is evaluated: its logits give the first answer token.
        shared = min(shared, len(job.prompt) - 1)
        if source in self._cached and not self._free:
            # Out of sequence ids: the best cached sequence itself is handed over, trimmed to the prefix.
            del self._cached[source]
            self.backend.seq_rm(source, shared)
            job.seq = source
        else:
            job.seq = self._free.pop() if self._free else self._evict_lru()
            if shared:
                self.backend.seq_cp(source, job.seq, shared)
        job.kv = job.prompt[:shared]
        job.reused = shared
        job.sampler = sampler
        self._active.append(job)
        self._counts["requests"] += 1
        self._counts["prompt_tokens"] += len(job.prompt)
        self._counts["reused"] += shared
        self._counts["hits"] += shared > 0

    def _evict_lru(self) -> int:
        seq, _ = self._cached.popitem(last=False)
        self.backend.seq_rm(seq, 0)
        self._counts["evicted"] += 1
        return seq

    def _step(self) -> None:
        entries, owners = self._assemble()
        start = time.perf_counter()
        while (code := self.backend.decode(entries)) == KV_FULL:
            with self._cond:
                if self._cached:
                    self._free.append(self._evict_lru())
                elif len(self._active) > 1:
                    self._preempt(self._active[-1])
                else:
                    raise RuntimeError("the local model's KV cache cannot hold even one request; raise [model] n_ctx")
            entries, owners = self._assemble()
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        decoded = time.perf_counter()
        for job, consumed, _ in owners:
            job.kv.extend(consumed)
            job.next_token = None
        for job, _, logits_at in owners:
            if logits_at >= 0:
                self._advance(job, self.backend.sample(job.sampler, logits_at))
        with self._cond:
            self._batch_sizes[len(owners)] += 1
            # Seconds in decode calls that evaluate prompt tokens vs those that only advance answers, and sampling.
            self._seconds["prompt_decode_s" if len(entries) > len(owners) else "answer_decode_s"] += decoded - start
            self._seconds["sample_s"] += time.perf_counter() - decoded

    def _assemble(self) -> tuple[list[tuple[int, int, int, bool]], list[tuple[Job, list[int], int]]]:
        """One decode's entries: each generating job's last token, then prompt chunks in arrival order.

        Returns the entries and, per job in them, the tokens it hands over and the entry index of its
        logits (-1 while its prompt is not finished)."""
        entries: list[tuple[int, int, int, bool]] = []
        owners: list[tuple[Job, list[int], int]] = []
        for job in self._active:
            if job.next_token is not None:
                owners.append((job, [job.next_token], len(entries)))
                entries.append((job.next_token, len(job.kv), job.seq, True))
        budget = self.backend.n_batch - len(entries)
        for job in self._active:
            rest = job.prompt[len(job.kv):]
            if job.next_token is None and rest and budget > 0:
                chunk = rest[:budget]
                start, last = len(job.kv), len(chunk) == len(rest)
                entries.extend((tok, start + i, job.seq, last and i == len(chunk) - 1) for i, tok in enumerate(chunk))
                owners.append((job, chunk, len(entries) - 1 if last else -1))
                budget -= len(chunk)
        return entries, owners

    def _advance(self, job: Job, token: int) -> None:
        if self.backend.is_eog(token):
            self._finish(job, reason="stop")
            return
        job.output.append(token)
        before = len(job.text)
        job.text += self.backend.piece(token)
        for stop in job.stop:
            at = job.text.find(stop, max(0, before - len(stop) + 1))
            if at >= 0:
                job.text = job.text[:at]
                self._finish(job, reason="stop")
                return
        if len(job.output) >= job.max_tokens:
            self._finish(job, reason="length")
            return
        job.next_token = token

    def _preempt(self, job: Job) -> None:
        """Out of KV with nothing cached to drop: the newest job starts over later (same sampler settings)."""
        self._active.remove(job)
        self.backend.seq_rm(job.seq, 0)
        self._free.append(job.seq)
        self._counts["requests"] -= 1
        self._counts["prompt_tokens"] -= len(job.prompt)
        self._counts["reused"] -= job.reused
        self._counts["hits"] -= job.reused > 0
        self._counts["preempted"] += 1
        job.seq, job.kv, job.output, job.text, job.next_token, job.reused, job.sampler = -1, [], [], b"", None, 0, None
        self._pending.appendleft(job)

    def _finish(self, job: Job, reason: str | None = None, error: BaseException | None = None) -> None:
        with self._cond:
            if job in self._active:
                self._active.remove(job)
                if job.seq >= 0:
                    self._cached[job.seq] = job.kv
            job.finish_reason, job.error, job.sampler = reason or "error", error, None
            if error is None:
                self._counts["output_tokens"] += len(job.output)
        job.done.set()
