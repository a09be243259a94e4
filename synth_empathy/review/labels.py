"""DIR/labels.jsonl: human labels appended one JSON line each, crash-safe, several reviewers per dialogue.

A label is never rewritten: a reviewer who labels a dialogue again appends a new line, and the last one wins
(`filters.calibration.latest_labels`). The corpus files are only ever read.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pydantic

from synth_empathy.corpus.store import iter_jsonl, repair_torn_tail
from synth_empathy.errors import UserError
from synth_empathy.schema import Label

LABELS = "labels.jsonl"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_labels(path: Path) -> list[Label]:
    """Every label in file order; a missing file is no labels, a bad line is a UserError naming it."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise UserError(f"{path} is not a labels file")
    out = []
    for i, record in enumerate(iter_jsonl(path), 1):
        try:
            out.append(Label.model_validate(record))
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise UserError(f"{path} record {i} is not a label: {loc}: {err['msg']}") from exc
    return out


class LabelStore:
    """Appends labels to DIR/labels.jsonl: one line each, flushed and fsynced before `append` returns.

    A thread lock serialises the app's request handlers; an exclusive `flock` on the file serialises
    separate processes (two reviewers running their own `review` on one shared folder), so lines never
    interleave. Opening the store repairs a last line a crash cut short.
    """

    def __init__(self, corpus_dir: Path) -> None:
        self.path = Path(corpus_dir) / LABELS
        self._lock = threading.Lock()
        if self.path.exists():
            with open(self.path, "a", encoding="utf-8") as f, _file_lock(f):
                repair_torn_tail(self.path)

    def append(self, label: Label) -> Label:
        line = label.model_dump_json() + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f, _file_lock(f):
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return label

    def read(self) -> list[Label]:
        return read_labels(self.path)


@contextmanager
def _file_lock(f: IO[str]) -> Iterator[None]:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
