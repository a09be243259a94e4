"""The one worker pool: a function over items on `concurrency` daemon threads.

Daemon threads, not a ThreadPoolExecutor: on a stop the items in flight are abandoned, and an executor's
threads would keep the process alive until their calls returned (a dialogue waiting on a slow endpoint
would hold up Ctrl-C). Threads, not asyncio: measured against a bare async client they keep an endpoint
as busy (BENCHMARKS.md), and the programs stay plain synchronous DSPy.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from synth_empathy.schema import Dialogue, Rejection

Outcome = Dialogue | Rejection
In = TypeVar("In")
Out = TypeVar("Out")


class Crash:
    """A worker hit an error outside the per-item handling (a bug): whoever reads the result raises it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Workers(Generic[In, Out]):
    """`fn` over submitted items on `concurrency` daemon threads; each result goes to the queue its item
    was submitted with, as it finishes.

    Example:
        >>> with Workers(len, concurrency=2) as pool:
        ...     pool.map(["a", "bb"])
        [1, 2]
    """

    def __init__(self, fn: Callable[[In], Out], concurrency: int, name: str = "worker") -> None:
        self._fn = fn
        self._tasks: queue.SimpleQueue[tuple[int, In, queue.SimpleQueue] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, concurrency))]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None or self._stopping.is_set():
                return
            key, item, results = task
            try:
                results.put((key, self._fn(item)))
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
                results.put((key, Crash(exc)))

    def submit(self, key: int, item: In, results: queue.SimpleQueue) -> None:
        self._tasks.put((key, item, results))

    def map(self, items: Sequence[In]) -> list[Out]:
        """`fn` of every item, in the items' order; the first crash is raised."""
        results: queue.SimpleQueue = queue.SimpleQueue()
        for key, item in enumerate(items):
            self.submit(key, item, results)
        out: dict[int, Out] = {}
        while len(out) < len(items):
            key, value = results.get()
            if isinstance(value, Crash):
                raise value.error
            out[key] = value
        return [out[key] for key in range(len(items))]

    def as_finished(self, items: Iterable[In], window: int) -> Iterator[Out]:
        """`fn` of every item as each finishes, with at most `window` items started ahead of the consumer, so a
        consumer that stops early does not wait for (or pay for) the rest."""
        pending = iter(items)
        results: queue.SimpleQueue = queue.SimpleQueue()
        started = 0
        for item in pending:
            self.submit(started, item, results)
            started += 1
            if started == window:
                break
        while started:
            _, value = results.get()
            started -= 1
            if isinstance(value, Crash):
                raise value.error
            following = next(pending, _END)
            if following is not _END:
                self.submit(0, following, results)
                started += 1
            yield value

    def stop(self) -> None:
        """Start no more items; the ones in flight finish unheard."""
        self._stopping.set()
        for _ in self._threads:
            self._tasks.put(None)

    def __enter__(self) -> Workers[In, Out]:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_END = object()


class OutcomeSource(Protocol):
    """Where run_generate takes finished outcomes from: local threads (`ThreadOutcomes`) or another engine."""

    def get(self, timeout: float) -> Outcome:
        """The next finished outcome; queue.Empty after `timeout` seconds without one."""

    def stop(self) -> None:
        """Start no more seeds; the ones in flight may be abandoned."""


class ThreadOutcomes:
    """`make` over seeds on a `Workers` pool of this process, as an OutcomeSource. Seeds are drawn from their
    iterable as outcomes are taken, a few ahead of the threads, so a long plan is never all in the queue."""

    AHEAD = 2  # seeds queued per thread

    def __init__(self, make: Callable[[In], Outcome], seeds: Collection[In], concurrency: int) -> None:
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        threads = max(1, min(concurrency, len(seeds)))
        self._pool: Workers = Workers(make, threads, name="dialogue")
        self._seeds: Iterator[In] = iter(seeds)
        self._feed(self.AHEAD * threads)

    def _feed(self, count: int) -> None:
        for seed in itertools.islice(self._seeds, count):
            self._pool.submit(0, seed, self._results)

    def get(self, timeout: float) -> Outcome:
        _, value = self._results.get(timeout=timeout)
        self._feed(1)
        if isinstance(value, Crash):
            raise value.error
        return value

    def stop(self) -> None:
        self._pool.stop()


def already_finished(source: OutcomeSource) -> Iterator[Outcome]:
    """The outcomes `source` has finished, without waiting for more."""
    while True:
        try:
            yield source.get(timeout=0)
        except queue.Empty:
            return
