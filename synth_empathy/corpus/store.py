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

from synth_empathy.corpus.repair import repair_torn_tail
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Manifest, Rejection

KEPT = "dialogues.jsonl"
REJECTED = "rejected.jsonl"
MANIFEST = "manifest.json"
CARD = "README.md"


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


GENERATION_FAILED = "generation_failed"


@dataclass
class RecordTally:
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

    def add(self, record: Dialogue | Rejection) -> None:
        self._add(record.id, isinstance(record, Dialogue), [] if isinstance(record, Dialogue) else record.reasons)

    def _add(self, seed_id: str, kept: bool, reasons: list[str]) -> None:
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


def one_outcome_per_seed(dialogues: list[Dialogue], rejections: list[dict]) -> tuple[list[Dialogue], list[dict]]:
    """The rule of `RecordTally` for readers: a seed's first kept record, else its latest rejection (a retried
    seed leaves its failed attempts in rejected.jsonl; a folder written twice before the lock holds copies)."""
    kept: dict[str, Dialogue] = {}
    for d in dialogues:
        kept.setdefault(d.id, d)
    latest: dict[object, dict] = {}
    for r in rejections:
        seed_id = r.get("id") if isinstance(r.get("id"), str) else id(r)  # a line without an id stands alone
        if seed_id not in kept:
            latest.pop(seed_id, None)  # re-insert, so the order is that of the latest outcomes
            latest[seed_id] = r
    return list(kept.values()), list(latest.values())


def tally_records(out_dir: Path) -> RecordTally:
    """Read the ids, counts and rejection reasons of the records in `out_dir` once (not the dialogues' text)."""
    tally = RecordTally()
    for name in (KEPT, REJECTED):
        path = Path(out_dir) / name
        if not path.exists():
            continue
        for record in iter_jsonl(path):
            tally._add(record["id"], name == KEPT, list(record.get("reasons", [])))
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
