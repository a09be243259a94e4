"""dedup, judge and filter over an outside dataset: the kept input records come back as they were given
(corpus.records), and what each stage found sits beside them in files keyed by the records' own ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from synth_empathy.config import DedupConfig
from synth_empathy.corpus.read import report_bad_rows
from synth_empathy.corpus.records import (
    SourceRecords,
    index_of,
    keyed,
    need_dialogues,
    stream_utterances,
    write_chosen,
    write_keyed,
)
from synth_empathy.errors import UserError
from synth_empathy.filters.dedup import DuplicateOf, find_normalized_duplicates, scoped_text
from synth_empathy.schema import Dialogue, Rejection
from synth_empathy.text import normalized_bytes


def check_suffix(records: SourceRecords, out: Path) -> None:
    """An output of the input's own records is named for their form, so the next command reads it right."""
    if out.suffix.lower() != records.suffix and not (records.layout == "jsonl" and out.suffix.lower() == ".ndjson"):
        raise UserError(f"--out {out}: the kept records are written as the input holds them ({records.layout}); "
                        f"name the output {out.stem}{records.suffix}")


def dedup_outside(source: Path, config: DedupConfig, out: Path, duplicates_to: Path,
                  bad_rows_to: Path) -> tuple[int, int]:
    """Near-duplicate removal over an outside file without building Dialogues; (kept, dropped).

    OUT gets the kept records verbatim; `duplicates_to` one {id, record, stage, reasons, duplicate_of,
    jaccard} line per dropped record, both ids the input's own.
    """
    records, utterances = stream_utterances(source)
    normalized = [normalized_bytes(scoped_text(((role, text) for role, text, _ in said), config.scope))
                  for said in utterances]
    report_bad_rows(source, records.bad_rows, bad_rows_to)
    need_dialogues(records, len(normalized))
    check_suffix(records, out)
    dropped = find_normalized_duplicates(records.ids, normalized, config)
    del normalized
    kept = write_chosen(records, (i for i, did in enumerate(records.ids) if did not in dropped), out)
    write_keyed(duplicates_to, duplicate_rows(records, dropped))
    return kept, len(dropped)


def duplicate_rows(records: SourceRecords, dropped: dict[str, DuplicateOf]) -> Iterable[dict]:
    at = index_of(records)
    for i, did in enumerate(records.ids):
        dup = dropped.get(did)
        if dup is not None:
            yield keyed(records, i, stage="dedup", reasons=[f"{dup.kind}_duplicate"],
                        duplicate_of=records.keys[at[dup.kept_id]], jaccard=round(dup.jaccard, 4))


def outcome_rows(records: SourceRecords, kept: Sequence[Dialogue], rejected: Sequence[Rejection]) -> list[dict]:
    """One row per record, in file order: kept or not, the stage and reasons that dropped it, its scores."""
    at = index_of(records)
    rows: dict[int, dict] = {}
    for d in kept:
        rows[at[d.id]] = keyed(records, at[d.id], kept=True, scores=_scores(d))
    for r in rejected:
        i = at[r.id]
        row = keyed(records, i, kept=False, stage=r.stage, reasons=r.reasons)
        if r.dialogue is not None and r.dialogue.scores is not None:
            row["scores"] = _scores(r.dialogue)
        if r.detail:
            row["detail"] = _detail(records, r, at)
        rows[i] = row
    return [rows[i] for i in sorted(rows)]


def _scores(d: Dialogue) -> dict | None:
    return d.scores.model_dump(mode="json") if d.scores is not None else None


def _detail(records: SourceRecords, r: Rejection, at: dict[str, int]) -> str:
    """The rejection's detail with our dialogue ids ("duplicates chat-d1") in the input's own ids."""
    detail = r.detail
    if r.stage == "dedup":
        for word in detail.split():
            if word in at:
                detail = detail.replace(word, str(records.keys[at[word]]))
    return detail


def write_outside(records: SourceRecords, kept: Sequence[Dialogue], rejected: Sequence[Rejection],
                  kept_to: Path, outcomes_to: Path, rejected_to: Path | None = None) -> int:
    """The kept records verbatim to `kept_to` (the rejected ones to `rejected_to`), one outcome row per record
    to `outcomes_to`; returns how many were kept."""
    at = index_of(records)
    count = write_chosen(records, (at[d.id] for d in kept), kept_to)
    if rejected_to is not None:
        write_chosen(records, (at[r.id] for r in rejected), rejected_to)
    write_keyed(outcomes_to, outcome_rows(records, kept, rejected))
    return count
