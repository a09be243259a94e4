"""Benchmark contamination: which dialogues share a long word n-gram, or a near-duplicate MinHash signature, with
the dialogues of benchmark files (EmpatheticDialogues, ESConv, EQ-Bench, ...) that a model trained on them would
be evaluated on.

Two checks, both on the dedup stage's normalized words (text.normalized_bytes) and its hashes:

- **Long n-grams.** Like the open decontamination scripts (GPT-3's, lm-evaluation-harness's), any shared
  13-gram (``ngram``) of words flags a dialogue: 13 words in a row almost never repeat by chance, while copying
  or paraphrasing a benchmark's sentence keeps them. The n-grams are hashed as dedup's shingles are, and matched
  with one sorted-array membership test.
- **Near duplicates.** The benchmark dialogues go into a ``DedupIndex`` (the dedup stage's index, its threshold,
  shingles and LSH bands), and every corpus dialogue is queried against it: a verified Jaccard at or above the
  dedup threshold flags it, whatever its n-grams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth_empathy.config import DedupConfig
from synth_empathy.filters.dedup import DedupIndex, shingle_count, shingle_hashes_of
from synth_empathy.text import normalized_bytes

DEFAULT_NGRAM = 13


@dataclass
class Overlap:
    """What one corpus dialogue shares with the benchmarks: n-grams (how many, first benchmark item holding one)
    and its nearest benchmark item at or above the threshold."""

    ngram_hits: int = 0
    ngram_item: str | None = None
    near_item: str | None = None
    near_jaccard: float | None = None

    @property
    def reasons(self) -> list[str]:
        return (["benchmark_ngram_overlap"] if self.ngram_hits else []) + (
            ["benchmark_near_duplicate"] if self.near_item is not None else [])


def ngram_overlaps(texts: Sequence[str], benchmark_ids: Sequence[str], benchmark_texts: Sequence[str],
                   ngram: int = DEFAULT_NGRAM) -> list[tuple[int, str | None]]:
    """(shared n-grams, the first benchmark id holding one of them) for each text."""
    bench = [normalized_bytes(t) for t in benchmark_texts]
    counts = np.fromiter((shingle_count(t, ngram) for t in bench), dtype=np.int64, count=len(bench))
    bench_hashes = shingle_hashes_of(bench, ngram)
    owner = np.repeat(np.arange(len(bench)), counts)
    # Benchmark texts shorter than one n-gram hash as a whole (dedup's rule); such a text is no long n-gram.
    long_enough = np.repeat(counts > 0, counts) & np.repeat([t.count(b" ") + 1 >= ngram for t in bench], counts)
    unique, first = np.unique(bench_hashes[long_enough], return_index=True)
    owners = owner[long_enough][first]
    out = []
    for text in texts:
        normalized = normalized_bytes(text)
        if not normalized or normalized.count(b" ") + 1 < ngram:
            out.append((0, None))
            continue
        mine = np.unique(shingle_hashes_of([normalized], ngram))
        at = np.searchsorted(unique, mine)
        hit = (at < len(unique)) & (unique[np.minimum(at, len(unique) - 1)] == mine)
        hits = int(hit.sum())
        out.append((hits, benchmark_ids[int(owners[at[hit][0]])] if hits else None))
    return out


def find_contamination(texts: Sequence[str], benchmark_ids: Sequence[str], benchmark_texts: Sequence[str],
                       config: DedupConfig, ngram: int = DEFAULT_NGRAM) -> list[Overlap]:
    """An Overlap per text (empty reasons: clean). Benchmark ids must be unique."""
    index = DedupIndex(config)
    index.add_many(list(benchmark_ids), list(benchmark_texts))
    near = index.query_many(texts)
    out = []
    for (hits, item), dup in zip(ngram_overlaps(texts, benchmark_ids, benchmark_texts, ngram), near, strict=True):
        out.append(Overlap(hits, item, dup.kept_id if dup else None, round(dup.jaccard, 4) if dup else None))
    return out
