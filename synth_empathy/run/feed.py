"""What the Python API hands a training loop: a one-pass `DialogueStream`, and a `Feed` that generates a plan
once and replays it, so every epoch (and a trainer's peek at the first row) reads the same dialogues.

Both count what they drop: every rejection is kept (`rejections`) and `counts()` adds up to the plan.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from synth_empathy.corpus.read import read_corpus
from synth_empathy.errors import UserError, require_extra
from synth_empathy.publish.rows import (
    DEFAULT_SYSTEM_PROMPT,
    hf_features,
    hf_row,
    prompt_completion_features,
    prompt_completion_rows,
)
from synth_empathy.run.workers import Outcome
from synth_empathy.schema import Dialogue, Manifest, Rejection

ROWS = ("hf", "prompt-completion")  # the row kinds a Feed turns into a dataset, named as the exports name them
WAIT_S = 0.5  # how long a reader sleeps between looks at a feed that is still generating
_LIVE: weakref.WeakValueDictionary[int, Feed] = weakref.WeakValueDictionary()
_KEYS = itertools.count()


def _counts(planned: int, kept: int, rejections: Iterable[Rejection]) -> dict[str, Any]:
    rejections = list(rejections)
    return {"planned": planned, "kept": kept, "rejected": len(rejections),
            "pending": max(0, planned - kept - len(rejections)),
            "reasons": dict(Counter(r for rejection in rejections for r in rejection.reasons))}


class DialogueStream(Iterator[Dialogue]):
    """Kept dialogues of one pass, as they are made; rejections are counted in `rejections`, not yielded.

    Example:
        >>> stream = generator.stream()  # doctest: +SKIP
        >>> dialogues = list(stream)  # doctest: +SKIP
        >>> stream.counts()  # doctest: +SKIP
        {'planned': 8, 'kept': 6, 'rejected': 2, 'pending': 0, 'reasons': {'near_duplicate': 2}}
    """

    def __init__(self, outcomes: Iterator[Outcome], planned: int) -> None:
        self._outcomes = outcomes
        self.planned = planned
        self.kept = 0
        self.rejections: list[Rejection] = []

    def __iter__(self) -> DialogueStream:
        return self

    def __next__(self) -> Dialogue:
        for outcome in self._outcomes:
            if isinstance(outcome, Dialogue):
                self.kept += 1
                return outcome
            self.rejections.append(outcome)
        raise StopIteration

    def close(self) -> None:
        """Start no more dialogues; the ones in flight are abandoned."""
        close = getattr(self._outcomes, "close", None)
        if close:
            close()

    def counts(self) -> dict[str, Any]:
        """planned, kept, rejected, pending (not made yet) and the rejections' reason codes."""
        return _counts(self.planned, self.kept, self.rejections)


class _Closed(Exception):
    """Raised into the producer by `Feed.close` to end its run early."""


class Feed:
    """A plan generated once on a background thread and replayed: each pass yields the kept dialogues in the
    order they were kept, each as soon as it is, and a later pass re-reads the same ones without generating.

    `produce(add)` runs the generation and calls `add` with every outcome; `kept` and `rejections` are what an
    earlier session already left in `out_dir` (when there is one). Made by `Generator.materialize`.
    """

    def __init__(self, produce: Callable[[Callable[[Outcome], None]], object], planned: int,
                 kept: Iterable[Dialogue] = (), rejections: Iterable[Rejection] = (),
                 out_dir: Path | None = None) -> None:
        self._produce = produce
        self.planned = planned
        self.out_dir = out_dir
        self._kept = list(kept)
        self._kept_ids = {d.id for d in self._kept}
        self._rejections = {r.id: r for r in rejections}  # a retried seed's new outcome replaces its rejection
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._finished = False
        self._closing = False
        self._error: BaseException | None = None
        self.manifest: Manifest | None = None
        self._key = next(_KEYS)
        _LIVE[self._key] = self

    def __reduce__(self):
        # `datasets` pickles a generator to fingerprint it; a feed (threads, LMs, files) pickles as its key.
        return _live_feed, (self._key,)

    # -- the producer ------------------------------------------------------------------------

    def start(self) -> Feed:
        """Start generating (once; later calls do nothing). Reading the feed starts it too."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="feed", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self._produce(self._add)
            self.manifest = result if isinstance(result, Manifest) else None
        except _Closed:
            pass
        except BaseException as exc:  # noqa: BLE001 - raised in every reader's thread instead
            self._error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _add(self, outcome: Outcome) -> None:
        # Called once the outcome is on disk (a folder feed), so it is kept here too before a close stops the run.
        with self._cond:
            if isinstance(outcome, Dialogue):
                if outcome.id not in self._kept_ids:
                    self._kept_ids.add(outcome.id)
                    self._kept.append(outcome)
                self._rejections.pop(outcome.id, None)
            elif outcome.id not in self._kept_ids:
                self._rejections.pop(outcome.id, None)
                self._rejections[outcome.id] = outcome
            self._cond.notify_all()
        if self._closing:
            raise _Closed

    def close(self) -> None:
        """Stop generating at the next finished dialogue (a folder run stays resumable); what is kept stays."""
        self._closing = True

    def wait(self) -> Feed:
        """Block until the whole plan is made; raises what the generation raised."""
        self.start()
        for _ in self:
            pass
        return self

    # -- readers -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def rejections(self) -> list[Rejection]:
        with self._cond:
            return list(self._rejections.values())

    def counts(self) -> dict[str, Any]:
        """planned, kept, rejected, pending (not made yet) and the rejections' reason codes."""
        with self._cond:
            return _counts(self.planned, len(self._kept), list(self._rejections.values()))

    def __iter__(self) -> Iterator[Dialogue]:
        self.start()
        i = 0
        while True:
            with self._cond:
                while i >= len(self._kept) and not self._finished:
                    self._cond.wait(WAIT_S)
                if i < len(self._kept):
                    dialogue = self._kept[i]
                elif self._error is not None:
                    raise self._error
                else:
                    return
            i += 1
            yield dialogue

    def rows(self, rows: str = "hf", system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> Iterator[dict[str, Any]]:
        """The export rows of every kept dialogue: "hf" (the hf export's row: `messages` and flat columns) or
        "prompt-completion" (one TRL row per supporter reply, as `export --format prompt-completion`)."""
        _check_rows(rows)
        for d in self:
            if rows == "hf":
                yield hf_row(d, system_prompt)
            else:
                yield from prompt_completion_rows(d, system_prompt)

    def to_hf_iterable_dataset(self, rows: str = "hf", system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        """A `datasets.IterableDataset` over `rows()`: the first pass follows the generation, every later pass
        (each epoch, TRL's peek at the first row) replays the same rows."""
        datasets = require_extra("datasets", "hf", "to_hf_iterable_dataset")
        _check_rows(rows)
        return datasets.IterableDataset.from_generator(
            self.rows, gen_kwargs={"rows": rows, "system_prompt": system_prompt}, features=_features(rows))

    def to_hf_dataset(self, rows: str = "hf", system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        """A map-style `datasets.Dataset` of `rows()`, once the whole plan is made (a length, shuffling, epochs)."""
        datasets = require_extra("datasets", "hf", "to_hf_dataset")
        _check_rows(rows)
        self.wait()
        return datasets.Dataset.from_list(list(self.rows(rows, system_prompt)), features=_features(rows))


def _live_feed(key: int) -> Feed:
    try:
        return _LIVE[key]
    except KeyError:
        raise UserError("a synth-empathy feed can be read only in the process that made it") from None


def _check_rows(rows: str) -> None:
    if rows not in ROWS:
        raise UserError(f"rows must be one of {', '.join(ROWS)}, not '{rows}'")


def _features(rows: str):
    return hf_features() if rows == "hf" else prompt_completion_features()


def earlier_outcomes(out_dir: Path) -> tuple[list[Dialogue], list[Rejection]]:
    """What an earlier session left in `out_dir`, one outcome per seed; a torn last line is skipped here and
    repaired by the run that resumes the folder."""
    if not out_dir.is_dir():
        return [], []
    corpus = read_corpus(out_dir, strict=False)
    rejections = []
    for record in corpus.rejections:
        try:
            rejections.append(Rejection.model_validate(record))
        except ValueError:  # a foreign line: the resumed run's tally ignores it too
            continue
    return corpus.dialogues, rejections
