"""The batch scheduler of the local engine, on a fake llama.cpp backend (no model)."""

from __future__ import annotations

import threading

import pytest

from synth_empathy.lm.batching import KV_FULL, BatchScheduler, ContextOverflow, Job, common_prefix

EOG = 0


class FakeBackend:
    """A 'model' whose next token is the previous one + 1 (EOG after `until`); counts cells like a unified KV."""

    def __init__(self, n_ctx: int = 4096, n_batch: int = 64, n_seq: int = 8, until: int = 10**9):
        self.n_ctx, self.n_batch, self.n_seq, self.until = n_ctx, n_batch, n_seq, until
        self.cells: dict[int, dict[int, int]] = {}  # seq -> pos -> token
        self.decodes: list[list[tuple[int, int, int, bool]]] = []
        self.evaluated = 0
        self.gate = threading.Event()
        self.gate.set()

    def used(self) -> int:
        # Copied prefixes share cells: count distinct (pos, token, source) roughly as distinct (pos, token).
        return len({(p, t) for seq in self.cells.values() for p, t in seq.items()})

    def decode(self, entries):
        self.gate.wait()
        if self.used() + len(entries) > self.n_ctx:
            return KV_FULL
        for token, pos, seq, _ in entries:
            cells = self.cells.setdefault(seq, {})
            assert pos == len(cells), "positions must continue the sequence"
            cells[pos] = token
        self.decodes.append(entries)
        self.evaluated += len(entries)
        self._last = {i: token for i, (token, _, _, logits) in enumerate(entries) if logits}
        return 0

    def sample(self, sampler, index):
        token = self._last[index] + 1
        return EOG if token > self.until else token

    def make_sampler(self, sampling):
        if sampling == "bad grammar":
            raise ValueError("bad grammar")
        return object()

    def is_eog(self, token):
        return token == EOG

    def piece(self, token):
        return f"<{token}>".encode()

    def seq_cp(self, src, dst, n):
        self.cells.setdefault(dst, {}).update({p: t for p, t in self.cells[src].items() if p < n})

    def seq_rm(self, seq, p0):
        self.cells[seq] = {p: t for p, t in self.cells.get(seq, {}).items() if p < p0}


def job(prompt, max_tokens=3, stop=(), sampling=None):
    return Job(prompt=list(prompt), sampling=sampling, max_tokens=max_tokens, stop=[s.encode() for s in stop])


def run_together(scheduler, backend, jobs) -> None:
    """Run `jobs` from threads of their own, the first decode held until every one of them is queued."""
    backend.gate.clear()
    threads = [threading.Thread(target=scheduler.run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    while len(scheduler._pending) + len(scheduler._active) < len(jobs):
        threading.Event().wait(0.01)
    backend.gate.set()
    for t in threads:
        t.join(10)


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5] * 100 + [1], [5] * 100 + [2]) == 100


def test_a_job_generates_until_max_tokens_with_counts():
    backend = FakeBackend()
    done = BatchScheduler(backend).run(job([10, 20, 30], max_tokens=3))
    assert done.output == [31, 32, 33]
    assert done.text == b"<31><32><33>"
    assert done.finish_reason == "length"
    assert done.reused == 0


def test_end_of_generation_and_stop_strings_finish_with_stop():
    backend = FakeBackend(until=31)
    eog = BatchScheduler(backend).run(job([10, 20, 30], max_tokens=50))
    assert (eog.output, eog.finish_reason) == ([31], "stop")
    stopped = BatchScheduler(FakeBackend()).run(job([10, 20, 30], max_tokens=50, stop=["<33>"]))
    assert stopped.text == b"<31><32>"
    assert stopped.finish_reason == "stop"


def test_a_repeated_prompt_prefix_is_reused_not_evaluated():
    backend = FakeBackend()
    scheduler = BatchScheduler(backend)
    system = list(range(100, 160))
    scheduler.run(job(system + [1, 2, 3]))
    evaluated = backend.evaluated
    second = scheduler.run(job(system + [7, 8]))
    assert second.reused == len(system)
    assert backend.evaluated - evaluated == 2 + 2  # the two new prompt tokens, then two decoded answer tokens
    assert scheduler.stats()["cache_hits"] == 1
    assert scheduler.stats()["prefix_tokens_reused"] == len(system)


def test_an_identical_prompt_still_evaluates_its_last_token():
    backend = FakeBackend()
    scheduler = BatchScheduler(backend)
    scheduler.run(job([1, 2, 3, 4]))
    again = scheduler.run(job([1, 2, 3, 4]))
    assert again.reused == 3
    assert again.output == [5, 6, 7]


def test_reuse_off_evaluates_every_prompt():
    backend = FakeBackend()
    scheduler = BatchScheduler(backend, reuse=False)
    scheduler.run(job([1, 2, 3, 4]))
    assert scheduler.run(job([1, 2, 3, 4])).reused == 0
    assert scheduler.stats()["prefix_tokens_reused"] == 0


def test_concurrent_jobs_are_decoded_in_one_batch():
    backend = FakeBackend()
    scheduler = BatchScheduler(backend, max_batch=4)
    jobs = [job([i * 10, i * 10 + 1], max_tokens=5) for i in range(1, 5)]
    run_together(scheduler, backend, jobs)
    assert [j.output for j in jobs] == [[i * 10 + 2 + k for k in range(5)] for i in range(1, 5)]
    sizes = scheduler.stats()["batch_sizes"]
    assert max(sizes) >= 2
    assert any(len({seq for _, _, seq, _ in entries}) >= 2 for entries in backend.decodes)


def test_prompts_are_chunked_to_the_batch_size():
    backend = FakeBackend(n_batch=16)
    done = BatchScheduler(backend).run(job(range(1, 41), max_tokens=2))
    assert done.output == [41, 42]
    assert all(len(entries) <= 16 for entries in backend.decodes)


def test_a_full_kv_cache_evicts_cached_sequences_and_retries():
    backend = FakeBackend(n_ctx=40)
    scheduler = BatchScheduler(backend)
    scheduler.run(job(range(100, 120), max_tokens=2))
    done = scheduler.run(job(range(200, 225), max_tokens=2))  # does not fit beside the first
    assert done.output == [225, 226]
    assert scheduler.stats()["evicted"] >= 1


def test_a_prompt_longer_than_the_context_is_a_clear_error():
    scheduler = BatchScheduler(FakeBackend(n_ctx=32))
    with pytest.raises(ContextOverflow, match="does not fit"):
        scheduler.run(job(range(1, 40)))


def test_max_tokens_is_cut_to_the_context():
    done = BatchScheduler(FakeBackend(n_ctx=10)).run(job(range(1, 8), max_tokens=50))
    assert len(done.output) == 3
    assert done.finish_reason == "length"


def test_a_sampler_error_fails_that_job_only():
    scheduler = BatchScheduler(FakeBackend())
    with pytest.raises(ValueError, match="bad grammar"):
        scheduler.run(job([1, 2], sampling="bad grammar"))
    assert scheduler.run(job([1, 2], max_tokens=1)).output == [3]


def test_a_full_kv_cache_with_nothing_cached_restarts_the_newest_job_later():
    backend = FakeBackend(n_ctx=30, n_batch=64)
    scheduler = BatchScheduler(backend, max_batch=2)
    first, second = job(range(100, 110), max_tokens=8), job(range(200, 210), max_tokens=8)
    run_together(scheduler, backend, [first, second])
    # Together they need 2 x (10 + 8) cells of 30: one of them was set back and ran after the other.
    assert first.output == list(range(110, 118)) and second.output == list(range(210, 218))
    assert scheduler.stats()["preempted"] >= 1
    assert scheduler.stats()["requests"] == 2


def test_a_request_limit_below_the_kv_cache_is_enforced():
    scheduler = BatchScheduler(FakeBackend(n_ctx=100), max_request_tokens=20)
    with pytest.raises(ContextOverflow, match="context of 20 tokens"):
        scheduler.run(job(range(1, 25)))
    assert len(scheduler.run(job(range(1, 16), max_tokens=50)).output) == 5


def test_a_job_arriving_with_a_running_prompt_it_shares_waits_for_it_and_copies_it():
    # Dialogues start together: their first calls to one predictor share its instructions, and the second
    # must not evaluate them again beside the first.
    backend = FakeBackend(n_batch=16)
    scheduler = BatchScheduler(backend, max_batch=4)
    shared = list(range(1000, 1100))
    first, second = job(shared + [1, 2], max_tokens=2), job(shared + [7, 8, 9], max_tokens=2)
    run_together(scheduler, backend, [first, second])
    assert second.reused == 100 and second.output == [10, 11]
    assert backend.evaluated == 102 + 3 + 2 * 2 - 2  # each prompt token once; answers less their last token


def test_a_job_sharing_little_with_a_running_prompt_does_not_wait():
    scheduler = BatchScheduler(FakeBackend(), max_batch=4)
    running = job(range(1000, 1100))
    running.kv = running.prompt[:10]  # 10 of its 100 prompt tokens evaluated so far
    scheduler._active.append(running)
    assert scheduler._waits_for_prefix(job([*range(1000, 1040), 5]))  # 40 shared, 10 there yet
    assert not scheduler._waits_for_prefix(job([*range(1000, 1020), 5]))  # 20 shared: not worth a wait
    running.kv = running.prompt[:50]
    assert not scheduler._waits_for_prefix(job([*range(1000, 1040), 5]))  # all 40 there now
    assert not BatchScheduler(FakeBackend(), reuse=False)._waits_for_prefix(job([*range(1000, 1040), 5]))
