"""The output directory: crash-safe JSONL records, the manifest and the data card."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pydantic

from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Manifest, Rejection
from synth_empathy.userfiles import iter_lines, read_text

KEPT = "dialogues.jsonl"
REJECTED = "rejected.jsonl"
MANIFEST = "manifest.json"
CARD = "README.md"


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


def read_dialogues(path: Path) -> list[Dialogue]:
    out = []
    for i, record in enumerate(iter_jsonl(path), 1):
        try:
            out.append(Dialogue.model_validate(record))
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise UserError(f"{path} record {i} is not a synth-empathy dialogue: {loc}: {err['msg']}") from exc
    return out


@dataclass
class RecordTally:
    """What an output directory already holds: the seeds done, and counts for the manifest."""

    ids: set[str] = field(default_factory=set)
    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, record: Dialogue | Rejection) -> None:
        self.ids.add(record.id)
        if isinstance(record, Dialogue):
            self.kept += 1
        else:
            self.rejected += 1
            self.reasons.update(record.reasons)


def tally_records(out_dir: Path) -> RecordTally:
    """Read the ids, counts and rejection reasons of the records in `out_dir` once (not the dialogues' text)."""
    tally = RecordTally()
    for name in (KEPT, REJECTED):
        path = Path(out_dir) / name
        if not path.exists():
            continue
        for record in iter_jsonl(path):
            tally.ids.add(_record_id(record, path))
            if name == KEPT:
                tally.kept += 1
            else:
                tally.rejected += 1
                tally.reasons.update(record.get("reasons", []))
    return tally


class CorpusWriter:
    """Appends one record at a time, flushed and fsynced, so a crash loses at most the line being written.

    Opening it repairs a torn last line (see `repair_torn_tail`). One writer per directory at a time.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for name in (KEPT, REJECTED):
            repair_torn_tail(self.out_dir / name)
        self._kept: IO[str] = open(self.out_dir / KEPT, "a", encoding="utf-8")
        self._rejected: IO[str] = open(self.out_dir / REJECTED, "a", encoding="utf-8")

    def done_ids(self) -> set[str]:
        ids = set()
        for name in (KEPT, REJECTED):
            path = self.out_dir / name
            if path.exists():
                ids.update(_record_id(r, path) for r in iter_jsonl(path))
        return ids

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


def read_manifest(out_dir: Path) -> Manifest | None:
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(read_text(path))
    except pydantic.ValidationError as exc:
        raise UserError(f"{path} is not a synth-empathy manifest; choose another --out") from exc


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    path = Path(out_dir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)
