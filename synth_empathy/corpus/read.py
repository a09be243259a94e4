"""The one reader of corpora: our output directories and JSONL files, and any importable dataset.

Every path that turns a JSON record into a `Dialogue` (here and in the importers) goes through
`store.as_dialogue`, so a bad record is described the same way wherever it is read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
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


@dataclass
class CorpusStream:
    """An output directory read one record at a time, for passes whose memory must not grow with the corpus
    (the card a run writes at its end, `stats`). `dialogues()` streams each seed's first kept record, counting
    the lenient read's skipped lines in `unreadable`; `rejections()` then gives each other seed's latest
    rejection (the rule of `store.Tally`: a retried seed leaves its failed attempts behind), each reduced by
    `keep` to what the caller needs."""

    path: Path
    strict: bool = True
    manifest: Manifest | None = None
    unreadable: int = 0
    _kept_ids: set[str] = field(default_factory=set)

    def dialogues(self) -> Iterator[Dialogue]:
        self._kept_ids.clear()
        self.unreadable = 0
        kept = self.path / KEPT_FILE
        for i, record in enumerate(_records(kept, self.strict), 1):
            dialogue = as_dialogue(record)
            if isinstance(dialogue, str):
                if self.strict:
                    raise UserError(f"{kept} record {i} is not a synth-empathy dialogue: {dialogue}")
                self.unreadable += 1
            elif dialogue.id not in self._kept_ids:  # a folder written twice before the lock holds copies
                self._kept_ids.add(dialogue.id)
                yield dialogue

    def rejections(self, keep: Callable[[dict], dict] = lambda r: r) -> list[dict]:
        """Call after `dialogues()` has run to its end: a rejection of a seed that was kept is not counted."""
        latest: dict[object, dict] = {}
        for r in _records(self.path / REJECTED_FILE, self.strict):
            if not isinstance(r, dict):
                continue
            seed_id = r.get("id") if isinstance(r.get("id"), str) else id(r)  # a line without an id stands alone
            if seed_id not in self._kept_ids:
                latest.pop(seed_id, None)  # re-insert, so the order is that of the latest outcomes
                latest[seed_id] = keep(r)
        return list(latest.values())


def stream_corpus(corpus_dir: Path, *, strict: bool = True) -> CorpusStream:
    """An output directory's manifest now and its records as they are iterated.

    strict: a missing directory or dialogues.jsonl, or a record that is not a dialogue, raises
    UserError (the commands); lenient skips bad records and counts them (the card, which must
    never break the run that writes it).
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise UserError(f"corpus directory {corpus_dir} does not exist")
    if strict and not (corpus_dir / KEPT_FILE).is_file():
        raise UserError(f"{corpus_dir} holds no {KEPT_FILE}; give the output directory of a generate or filter run")
    try:
        manifest = read_manifest(corpus_dir) if (corpus_dir / MANIFEST_FILE).is_file() else None
    except UserError:
        if strict:
            raise
        manifest = None
    return CorpusStream(corpus_dir, strict, manifest)


def read_corpus(corpus_dir: Path, *, strict: bool = True) -> Corpus:
    """Read DIR/dialogues.jsonl, DIR/rejected.jsonl and DIR/manifest.json whole (see `stream_corpus`)."""
    stream = stream_corpus(corpus_dir, strict=strict)
    dialogues = list(stream.dialogues())
    return Corpus(stream.path, dialogues, stream.rejections(), stream.manifest, stream.unreadable)


def _records(path: Path, strict: bool) -> Iterator[Any]:
    if not path.is_file():
        return
    if strict:
        yield from iter_jsonl(path)
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                yield json.loads(line)
            except (ValueError, RecursionError):  # a torn or foreign line: the lenient read skips it
                continue


def read_any_dialogues(path: Path, bad_rows_to: Path | None = None, language: str = "en") -> list[Dialogue]:
    """Dialogues from our JSONL or any importable dataset (an imported one written in `language`; ours name
    theirs). Bad rows are written to `bad_rows_to` and counted on stderr, never silently dropped."""
    result = read_dataset(Path(path), language=language)
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
