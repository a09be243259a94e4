"""The output directory: crash-safe JSONL records, the manifest and the data card."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pydantic

from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Manifest, Rejection

KEPT = "dialogues.jsonl"
REJECTED = "rejected.jsonl"
MANIFEST = "manifest.json"
CARD = "README.md"


def repair_torn_tail(path: Path) -> bool:
    """Cut a last line that a crash left half-written (no newline, or not JSON). True if it cut."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    data = path.read_bytes()
    if data.endswith(b"\n"):
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            json.loads(last)
            return False
        except ValueError:
            pass
    cut = data.rstrip(b"\n").rfind(b"\n") + 1 if data.endswith(b"\n") else data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(cut)
    return True


def iter_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise UserError(f"{path} line {lineno} is not valid JSON: {exc.args[0]}") from exc


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


class CorpusWriter:
    """Appends one record at a time and flushes it to disk, so a crash loses at most the line being written."""

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
                ids.update(r["id"] for r in iter_jsonl(path))
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
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except pydantic.ValidationError as exc:
        raise UserError(f"{path} is not a synth-empathy manifest; choose another --out") from exc


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    path = Path(out_dir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)
