"""The one reader of corpora: our output directories and JSONL files, and any importable dataset.

Every path that turns a JSON record into a `Dialogue` (here and in the importers) goes through
`store.as_dialogue`, so a bad record is described the same way wherever it is read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_empathy.corpus.importers import BadRow, read_dataset
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.store import (
    KEPT_FILE,
    MANIFEST_FILE,
    REJECTED_FILE,
    as_dialogue,
    iter_jsonl,
    one_outcome_per_seed,
)
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Manifest


def read_dialogues(path: Path) -> list[Dialogue]:
    """Every record of one of our JSONL files; UserError at the first that is not a dialogue."""
    out = []
    for i, record in enumerate(iter_jsonl(path), 1):
        dialogue = as_dialogue(record)
        if isinstance(dialogue, str):
            raise UserError(f"{path} record {i} is not a synth-empathy dialogue: {dialogue}")
        out.append(dialogue)
    return out


@dataclass
class Corpus:
    """What an output directory holds, read once: kept dialogues, rejected records, the manifest."""

    path: Path
    dialogues: list[Dialogue]
    rejections: list[dict] = field(default_factory=list)
    manifest: Manifest | None = None
    unreadable: int = 0  # records skipped by a lenient read


def read_corpus(corpus_dir: Path, *, strict: bool = True) -> Corpus:
    """Read DIR/dialogues.jsonl, DIR/rejected.jsonl and DIR/manifest.json.

    strict: a missing directory or dialogues.jsonl, or a record that is not a dialogue, raises
    UserError (the commands); lenient skips bad records and counts them (the card, which must
    never break the run that writes it).
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise UserError(f"corpus directory {corpus_dir} does not exist")
    kept = corpus_dir / KEPT_FILE
    if strict and not kept.is_file():
        raise UserError(f"{corpus_dir} holds no {KEPT_FILE}; give the output directory of a generate or filter run")
    if strict:
        dialogues = read_dialogues(kept)
        unreadable = 0
    else:
        read = [as_dialogue(record) for record in _lenient_records(kept)]
        dialogues = [d for d in read if isinstance(d, Dialogue)]
        unreadable = len(read) - len(dialogues)
    rejected = corpus_dir / REJECTED_FILE
    records = (iter_jsonl(rejected) if strict else _lenient_records(rejected)) if rejected.is_file() else []
    rejections = [r for r in records if isinstance(r, dict)]
    try:
        manifest = read_manifest(corpus_dir) if (corpus_dir / MANIFEST_FILE).is_file() else None
    except UserError:
        if strict:
            raise
        manifest = None
    dialogues, rejections = one_outcome_per_seed(dialogues, rejections)
    return Corpus(corpus_dir, dialogues, rejections, manifest, unreadable)


def _lenient_records(path: Path) -> Iterable[Any]:
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except (ValueError, RecursionError):  # a torn or foreign line: the lenient read skips it
                continue
    return out


def read_any_dialogues(path: Path, bad_rows_to: Path | None = None) -> list[Dialogue]:
    """Dialogues from our JSONL or any importable dataset. Bad rows are written to `bad_rows_to` and
    counted on stderr, never silently dropped."""
    result = read_dataset(Path(path))
    report_bad_rows(Path(path), result.bad_rows, bad_rows_to)
    if not result.dialogues:
        raise UserError(f"{path} holds no dialogues (format {result.fmt})")
    return result.dialogues


def report_bad_rows(path: Path, bad_rows: list[BadRow], bad_rows_to: Path | None) -> None:
    """Write the rows of `path` that could not be read to `bad_rows_to` and count them on stderr."""
    if not bad_rows:
        return
    where = ""
    if bad_rows_to is not None:
        bad_rows_to.parent.mkdir(parents=True, exist_ok=True)
        bad_rows_to.write_text("".join(json.dumps({"location": b.location, "reason": b.reason}) + "\n"
                                       for b in bad_rows), encoding="utf-8")
        where = f" (listed in {bad_rows_to})"
    print(f"{path}: skipped {len(bad_rows)} bad row(s){where}", file=sys.stderr)
