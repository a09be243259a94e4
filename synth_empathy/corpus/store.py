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

from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Rejection
from synth_empathy.userfiles import iter_lines

KEPT_FILE = "dialogues.jsonl"
REJECTED_FILE = "rejected.jsonl"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"


def repair_torn_tail(path: Path) -> bool:
    """Repair the last line that a crash (SIGKILL, power loss) may have left half-written. True if it changed.

    Records are appended whole, one a line, so only the last line can be torn. A last line that is a
    complete JSON object but lost its newline gets the newline back; anything else after the last
    newline (a cut record, NUL bytes a filesystem left) is cut, and that seed is made again on resume.
    """
    if not path.exists() or path.stat().st_size == 0:
        return False
    start, last, newline = _last_line(path)
    if _is_record(last):
        if newline:
            return False
        with open(path, "ab") as f:
            f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return True
    with open(path, "r+b") as f:
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    return True


def _last_line(path: Path, chunk: int = 1 << 16) -> tuple[int, bytes, bool]:
    """(offset, bytes, ends with a newline) of the last non-empty line, reading only the file's tail."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        read = min(size, chunk)
        while True:
            f.seek(size - read)
            tail = f.read(read)
            body = tail.rstrip(b"\n")
            cut = body.rfind(b"\n")
            if cut >= 0 or read == size:
                start = size - read + cut + 1
                return start, body[cut + 1:], tail.endswith(b"\n")
            read = min(size, read * 2)


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


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



@dataclass
class Tally:
    """Outcomes counted once: the seeds done, how many kept and rejected, and the rejection reasons."""

    ids: set[str] = field(default_factory=set)
    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return self.kept + self.rejected

    def count(self, record_id: str, kept: bool, reasons: Iterable[str] = ()) -> None:
        self.ids.add(record_id)
        if kept:
            self.kept += 1
        else:
            self.rejected += 1
            self.reasons.update(reasons)

    def add(self, outcome: Dialogue | Rejection) -> None:
        self.count(outcome.id, isinstance(outcome, Dialogue), getattr(outcome, "reasons", ()))


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

    Opening it repairs a torn last line (see `repair_torn_tail`). One writer per directory at a time.
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
