"""The decontaminate command's runner: check a corpus against benchmark files (any import format), report what
overlaps, and with --out write a new corpus folder whose manifest and card record the check (and, with --drop,
without the flagged dialogues). The corpus it reads is never changed."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from synth_empathy.config import RunConfig
from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.manifest import now, write_manifest
from synth_empathy.corpus.outputs import check_outputs
from synth_empathy.corpus.read import read_corpus
from synth_empathy.corpus.records import need_dialogues, stream_utterances
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE
from synth_empathy.errors import UserError
from synth_empathy.filters.contamination import Overlap, find_contamination
from synth_empathy.filters.dedup import dialogue_text, scoped_text
from synth_empathy.publish.card import write_card
from synth_empathy.schema import Rejection

REPORT_FILE = "decontamination.json"


def benchmark_texts(paths: list[Path]) -> tuple[list[str], list[str], list[dict]]:
    """(ids "FILE#key", whole-dialogue texts, one {path, format, dialogues, bad_rows} per file)."""
    ids: list[str] = []
    texts: list[str] = []
    files = []
    for path in paths:
        records, utterances = stream_utterances(path)
        mine = [scoped_text(((role, text) for role, text, _ in said), "dialogue") for said in utterances]
        need_dialogues(records, len(mine))
        ids += [f"{path}#{key}" for key in records.keys]
        texts += mine
        files.append({"path": str(path), "format": records.fmt, "dialogues": len(mine),
                      "bad_rows": len(records.bad_rows)})
    return ids, texts, files


def decontaminate(corpus_dir: Path, against: list[Path], config: RunConfig, ngram: int, drop: bool = False,
                  out: Path | None = None) -> dict:
    """Check `corpus_dir`'s kept dialogues; return the report (and write `out` when given)."""
    if ngram < 1:
        raise UserError(f"--ngram must be 1 or more, not {ngram}")
    if drop and out is None:
        raise UserError("--drop needs --out: decontaminate never changes the corpus it reads, it writes a new one")
    if not against:
        raise UserError("give at least one benchmark file with --against")
    if out is not None:
        check_outputs([out], [corpus_dir, *against])
        if Path(corpus_dir).resolve() in Path(out).resolve().parents:
            raise UserError(f"--out {out} is inside the corpus {corpus_dir}; decontaminate never writes into the "
                            "corpus it reads, choose a folder outside it")
    corpus = read_corpus(corpus_dir)
    bench_ids, bench_texts, files = benchmark_texts(against)
    overlaps = find_contamination([dialogue_text(d, "dialogue") for d in corpus.dialogues], bench_ids, bench_texts,
                                  config.dedup, ngram)
    flagged = [(d, o) for d, o in zip(corpus.dialogues, overlaps, strict=True) if o.reasons]
    report = {
        "checked": {"corpus": str(corpus_dir), "against": files, "ngram": ngram, "threshold": config.dedup.threshold,
                    "shingle_ngram": config.dedup.ngram, "dialogues_checked": len(corpus.dialogues), "drop": drop,
                    "when": now()},
        "found": {"dialogues": len(flagged),
                  "ngram_overlap": sum(bool(o.ngram_hits) for _, o in flagged),
                  "near_duplicate": sum(o.near_item is not None for _, o in flagged),
                  "dropped": len(flagged) if drop else 0},
        "flagged": [{"id": d.id, "reasons": o.reasons, "ngram_hits": o.ngram_hits, "ngram_item": o.ngram_item,
                     "near_item": o.near_item, "near_jaccard": o.near_jaccard} for d, o in flagged],
    }
    if out is not None:
        with output_lock(out, folder=True):
            _write(corpus_dir, corpus, flagged, report, drop, out)
    return report


def _detail(o: Overlap, ngram: int) -> str:
    parts = []
    if o.ngram_hits:
        parts.append(f"shares {o.ngram_hits} {ngram}-grams with {o.ngram_item}")
    if o.near_item is not None:
        parts.append(f"near duplicate of {o.near_item} (Jaccard {o.near_jaccard:.2f})")
    return "; ".join(parts)


def _write(corpus_dir: Path, corpus, flagged, report: dict, drop: bool, out: Path) -> None:
    if any(p.name != LOCK for p in out.iterdir()):
        raise UserError(f"--out {out} is not empty; decontaminate writes a new corpus folder")
    dropped = {d.id for d, _ in flagged} if drop else set()
    with open(out / KEPT_FILE, "w", encoding="utf-8") as f:
        for d in corpus.dialogues:
            if d.id not in dropped:
                f.write(d.model_dump_json(exclude_none=True) + "\n")
    rejected_in = corpus_dir / REJECTED_FILE
    if rejected_in.is_file():
        shutil.copyfile(rejected_in, out / REJECTED_FILE)
    reasons: Counter[str] = Counter()
    with open(out / REJECTED_FILE, "a", encoding="utf-8") as f:
        for d, o in flagged:
            if d.id in dropped:
                reasons.update(o.reasons)
                f.write(Rejection(id=d.id, stage="decontaminate", reasons=o.reasons, seed=d.seed, dialogue=d,
                                  detail=_detail(o, report["checked"]["ngram"])).model_dump_json(exclude_none=True)
                        + "\n")
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if corpus.manifest is None:
        return
    manifest = corpus.manifest.model_copy(deep=True)
    manifest.decontamination = {k: report[k] for k in ("checked", "found")}
    manifest.counts["kept"] = manifest.counts.get("kept", len(corpus.dialogues)) - len(dropped)
    manifest.counts["rejected"] = manifest.counts.get("rejected", 0) + len(dropped)
    for reason, n in reasons.items():
        manifest.rejection_reasons[reason] = manifest.rejection_reasons.get(reason, 0) + n
    write_manifest(out, manifest)
    write_card(out, manifest)
