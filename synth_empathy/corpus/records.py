"""An outside dataset as the user gave it: its records read (streamed, or imported whole) and the chosen ones
written back verbatim, with what a command found about each record in side files keyed by the record's own id.

Verbatim means the same bytes for the lines of a JSONL (each kept line, its line ending included) and for the
lines of an EmpatheticDialogues CSV (the header, then every line of each kept conversation), and the same items
of a JSON list (re-serialized: a JSON document has no lines to copy). Our own dialogue JSONL is not an outside
corpus: `is_outside` tells the commands to keep their own layout for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from synth_empathy.corpus.importers import (
    BadRow,
    ImportResult,
    chat_dialogue_id,
    chat_utterances,
    classify_record,
    detect_format,
    emotion_problem,
    read_dataset,
    record_key,
    utterances_problem,
)
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue
from synth_empathy.userfiles import MAX_LINE_BYTES, iter_lines, reading

Utterances = list[tuple[str, str, str | None]]


@dataclass
class SourceRecords:
    """The readable records of one file, in file order: our dialogue id, the record's own key, its position."""

    path: Path
    fmt: str
    layout: str  # "jsonl", "json" or "csv" (see importers._Parsed.layout)
    ids: list[str] = field(default_factory=list)
    keys: list[str | int] = field(default_factory=list)  # the record's id (ED: conv_id), else its position
    positions: list[int] = field(default_factory=list)  # among the file's records (ED: conversations)
    bad_rows: list[BadRow] = field(default_factory=list)

    def add(self, did: str, key: str | int | None, position: int) -> None:
        self.ids.append(did)
        self.keys.append(key if key is not None else position)
        self.positions.append(position)

    @property
    def suffix(self) -> str:
        return {"jsonl": ".jsonl", "json": ".json", "csv": ".csv"}[self.layout]


def source_format(path: Path, fmt: str | None = None) -> str:
    """The importer format of `path`; a JSONL is judged by its first record, without reading the rest."""
    if fmt is not None:
        return fmt
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson") and path.is_file():
        for number, line in iter_lines(path):
            if line.strip():
                try:
                    kind = classify_record(json.loads(line.lstrip("\ufeff") if number == 1 else line))
                except (ValueError, RecursionError):
                    break  # let the importer describe the file
                if kind is not None:
                    return kind
                break
    return detect_format(path)


def is_outside(path: Path, fmt: str | None = None) -> bool:
    """Whether `path` is an outside dataset (anything but our own dialogue JSONL)."""
    return source_format(path, fmt) != "synth"


def stream_utterances(path: Path, fmt: str | None = None) -> tuple[SourceRecords, Iterator[Utterances]]:
    """The records of `path` and, lazily, each readable record's utterances (what dedup needs, no Dialogue).

    Chat JSONL is streamed line by line under the importer's rules (chat_utterances, the same bad rows and the
    same dialogue ids); any other format is imported whole and its dialogues' turns are given instead. The
    SourceRecords fill up as the iterator is consumed.
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson") and source_format(path, fmt) == "chat":
        records = SourceRecords(path, "chat", "jsonl")
        return records, _chat_lines(path, records)
    records, dialogues = import_records(path, fmt)
    return records, ([(t.role, t.text, t.strategy) for t in d.turns] for d in dialogues)


def _chat_lines(path: Path, records: SourceRecords) -> Iterator[Utterances]:
    seen: set[str] = set()
    index = 0
    for number, line in iter_lines(path, MAX_LINE_BYTES):
        if number == 1:
            line = line.lstrip("\ufeff")  # the importer reads the file as utf-8-sig
        if not line.strip():
            continue
        position, index = index, index + 1
        where = f"line {number}"
        try:
            record = _loads(line)
        except ValueError as exc:
            records.bad_rows.append(BadRow(where, f"not valid JSON ({getattr(exc, 'msg', exc)})"))
            continue
        except RecursionError:
            records.bad_rows.append(BadRow(where, "JSON nested deeper than can be read"))
            continue
        if not isinstance(record, dict):
            records.bad_rows.append(BadRow(where, f"expected a JSON object, found {type(record).__name__}"))
            continue
        said = chat_utterances(record)
        did = chat_dialogue_id(record, position)
        # In the importer's order: the record's shape, then (in _Builder.add) its id, its labels, its turns.
        problem = said if isinstance(said, str) else (
            f"duplicate dialogue id '{did}'" if did in seen else
            emotion_problem(record.get("emotion"), required=False) or utterances_problem(said.utterances))
        if problem is not None:
            records.bad_rows.append(BadRow(where, problem))
            continue
        seen.add(did)
        records.add(did, record_key(record), position)
        yield said.utterances  # type: ignore[union-attr]  # a str is a problem, handled above


def _loads(line: str) -> Any:
    """orjson where it can (a third less time than json on large files), json for what orjson refuses or reads
    otherwise (NaN; an integer id past 64 bits, which orjson makes a float) and for a bad row's message."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    return json.loads(line) if isinstance(record, dict) and isinstance(record.get("id"), float) else record


def import_records(path: Path, fmt: str | None = None, language: str = "en") -> tuple[SourceRecords, list[Dialogue]]:
    """Every dialogue of `path` through the importer (an outside one written in `language`), with the records
    they came from."""
    result = read_dataset(Path(path), fmt, language=language)
    return records_of(result), result.dialogues


def records_of(result: ImportResult) -> SourceRecords:
    records = SourceRecords(Path(result.source), result.fmt, result.layout, bad_rows=list(result.bad_rows))
    for d in result.dialogues:
        position, key = result.origins[d.id]
        records.add(d.id, key, position)
    return records


# ---------------------------------------------------------------- writing back


def write_chosen(records: SourceRecords, chosen: Iterable[int], out: Path) -> int:
    """Write the records at these indexes (into records.ids) to `out` in the input's own form; return how many."""
    rows = sorted(set(chosen))
    positions = {records.positions[i] for i in rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    with reading(records.path):
        if records.layout == "jsonl":
            _copy_lines(records.path, out, _nonblank_at(positions))
        elif records.layout == "csv":
            wanted = {str(records.keys[i]).strip().encode() for i in rows}
            _copy_lines(records.path, out, lambda number, raw: raw.split(b",", 1)[0].strip() in wanted
                        or raw.lstrip(b"\xef\xbb\xbf").startswith(b"conv_id,"))
        else:
            data = json.loads(records.path.read_text(encoding="utf-8-sig"))
            items = data if isinstance(data, list) else [data]
            chosen_items: Any = [items[p] for p in sorted(positions)]
            if not isinstance(data, list):
                chosen_items = chosen_items[0] if chosen_items else []
            out.write_text(json.dumps(chosen_items, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return len(rows)


def _nonblank_at(positions: set[int]) -> Callable[[int, bytes], bool]:
    """A line test: is this the record at one of `positions`, counting records as the importer does (non-blank)."""
    state = {"index": 0}

    def keep(number: int, raw: bytes) -> bool:
        if not raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip():
            return False
        position = state["index"]
        state["index"] += 1
        return position in positions

    return keep


def _copy_lines(source: Path, out: Path, keep: Callable[[int, bytes], bool]) -> None:
    """Copy the lines (split on b"\\n", their endings kept) that `keep(number, line)` chooses, byte for byte."""
    with open(source, "rb") as src, open(out, "wb") as dst:
        for number, raw in enumerate(src, start=1):
            if keep(number, raw):
                dst.write(raw)


def write_keyed(path: Path, rows: Iterable[dict]) -> int:
    """One JSON object a line (the side files: duplicates, scores, reasons); return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def keyed(records: SourceRecords, i: int, **fields: Any) -> dict:
    """A side-file row for record i: the record's own id first, then its position, then `fields`."""
    return {"id": records.keys[i], "record": records.positions[i], **fields}


def need_dialogues(records: SourceRecords, count: int) -> None:
    if not count:
        raise UserError(f"{records.path} holds no dialogues (format {records.fmt})")


def index_of(records: SourceRecords) -> dict[str, int]:
    """Our dialogue id -> index into records.ids."""
    return {did: i for i, did in enumerate(records.ids)}

