"""The output directory's records: crash-safe JSONL appends, torn-tail repair, and the tally of what it holds."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pydantic

from synth_empathy.corpus.repair import repair_torn_tail
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Rejection
from synth_empathy.userfiles import iter_lines

KEPT_FILE = "dialogues.jsonl"
REJECTED_FILE = "rejected.jsonl"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"


def iter_jsonl(path: Path) -> Iterator[dict]:
    """The JSON object on each line, streamed; a line that is not one is a UserError naming the file and line."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path} line {lineno} is not valid JSON: {exc.args[0]}") from exc
        except RecursionError as exc:
            raise UserError(f"{path} line {lineno} nests its JSON deeper than can be read") from exc
        if not isinstance(record, dict):
            raise UserError(f"{path} line {lineno} is not a JSON object")
        yield record


def _record_id(record: dict, path: Path) -> str:
    if not isinstance(record.get("id"), str):
        raise UserError(f"{path} holds a record without a string id; it is not a synth-empathy output file")
    return record["id"]


def as_dialogue(record: Any) -> Dialogue | str:
    """The record as a Dialogue, or why it is not one ("turns.0.role: Input should be ...")."""
    try:
        return Dialogue.model_validate(record)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"



GENERATION_FAILED = "generation_failed"


@dataclass
class Tally:
    """What an output directory holds, one outcome per seed: the seeds done, counts for the manifest, and the
    generation failures of each seed so far (the history that decides which seeds a resume tries again).

    A seed's outcome is its kept record if it has one (a kept seed is never made again), else its latest
    rejection: a failed generation stays in rejected.jsonl when a resume retries the seed.
    """

    ids: set[str] = field(default_factory=set)
    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # seed id -> generation_failed rejections
    _kept_ids: set[str] = field(default_factory=set, repr=False)
    _rejections: dict[str, list[str]] = field(default_factory=dict, repr=False)  # id -> its latest reasons

    @property
    def done(self) -> int:
        return self.kept + self.rejected

    def add(self, record: Dialogue | Rejection) -> None:
        self.count(record.id, isinstance(record, Dialogue), [] if isinstance(record, Dialogue) else record.reasons)

    def count(self, seed_id: str, kept: bool, reasons: Iterable[str] = ()) -> None:
        reasons = list(reasons)
        if seed_id in self._kept_ids:
            return
        self.ids.add(seed_id)
        previous = self._rejections.pop(seed_id, None)
        if previous is not None:  # a retried seed: its new outcome replaces the old one in the counts
            self.rejected -= 1
            self.reasons -= Counter(previous)
        if kept:
            self._kept_ids.add(seed_id)
            self.kept += 1
            return
        self._rejections[seed_id] = reasons
        self.rejected += 1
        self.reasons.update(reasons)
        self.failures[seed_id] += GENERATION_FAILED in reasons

    def to_retry(self, max_attempts: int) -> set[str]:
        """Seeds whose latest outcome is a failed generation, with attempts left."""
        return {i for i, reasons in self._rejections.items()
                if GENERATION_FAILED in reasons and self.failures[i] < max_attempts}


def tally_records(out_dir: Path) -> Tally:
    """Read the ids, counts and rejection reasons of the records in `out_dir` once (not the dialogues' text)."""
    tally = Tally()
    for name in (KEPT_FILE, REJECTED_FILE):
        path = Path(out_dir) / name
        if path.exists():
            for record in iter_jsonl(path):
                tally.count(_record_id(record, path), name == KEPT_FILE, record.get("reasons", []))
    return tally


class CorpusWriter:
    """Appends one record at a time, flushed and fsynced, so a crash loses at most the line being written.

    Opening it repairs a torn last line and quarantines a bad one (see `corpus.repair`). One writer per directory at
    a time: `corpus.lock`.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for name in (KEPT_FILE, REJECTED_FILE):
            repair_torn_tail(self.out_dir / name)
        self._kept: IO[str] = open(self.out_dir / KEPT_FILE, "a", encoding="utf-8")
        self._rejected: IO[str] = open(self.out_dir / REJECTED_FILE, "a", encoding="utf-8")

    def _append(self, f: IO[str], record: pydantic.BaseModel) -> None:
        line = record.model_dump_json(exclude_none=True) + "\n"
        with self._lock:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def keep(self, dialogue: Dialogue) -> None:
        self._append(self._kept, dialogue)

    def reject(self, rejection: Rejection) -> None:
        self._append(self._rejected, rejection)

    def close(self) -> None:
        self._kept.close()
        self._rejected.close()
