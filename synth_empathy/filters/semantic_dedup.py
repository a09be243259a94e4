"""Semantic near-duplicates: paraphrases that share too few words for MinHash, found by embedding cosine.

The embeddings are WordLlama's (the `semantic` extra): static 256-d token embeddings, average-pooled, whose
weights and tokenizer ship inside the PyPI wheel, so nothing is fetched at run time. Every pair is compared
exactly (blocked matrix products of the normalised embeddings): there is no approximate index, so every
duplicate reported is a verified pair, with its cosine. Cost grows with n^2 (BENCHMARKS.md has docs/s).

Example:
    >>> semantic_duplicates(["a", "b"], ["I lost my job.", "I was let go from work."], 0.8)  # doctest: +SKIP
    {'b': ('a', 0.83)}
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth_empathy.errors import require_extra
from synth_empathy.filters.dedup import dialogue_score, dialogue_text, keeper_rank
from synth_empathy.schema import Dialogue, Rejection

BLOCK = 2048  # rows of the similarity matrix computed at once: 2048 x n float32


@functools.cache
def _embedder() -> Any:
    wordllama = require_extra("wordllama", "semantic", "[dedup] semantic = true")
    # WordLlama looks for its packaged tokenizer under tokenizer/ but ships it under tokenizers/; naming the package
    # folder as the cache finds both files there, and disable_download makes a missing file an error, not a fetch.
    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 256), dtype=np.float32)
    vectors = np.asarray(_embedder().embed(list(texts), norm=True), dtype=np.float32)
    return np.atleast_2d(vectors)


def similar_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i, j), i < j, whose cosine is at least `threshold`, with that cosine."""
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), BLOCK):
        sims = vectors[start:start + BLOCK] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append((i, c, float(sims[r, c])))
    return pairs


def semantic_duplicates(ids: Sequence[str], texts: Sequence[str], threshold: float,
                        scores: Sequence[float | None] | None = None) -> dict[str, tuple[str, float]]:
    """{dropped id: (the kept id it paraphrases, their cosine)}. Items are kept best first (highest score, then
    smallest id, as MinHash dedup keeps them); an item goes only when it is that close to one already kept, so a
    chain a~b~c never drops c for a pair (a, c) that was never close."""
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for i, j, cosine in similar_pairs(embed(texts), threshold):
        neighbours.setdefault(i, []).append((j, cosine))
        neighbours.setdefault(j, []).append((i, cosine))
    rank = keeper_rank(ids, scores)
    kept: set[int] = set()
    dropped: dict[str, tuple[str, float]] = {}
    for i in sorted(range(len(ids)), key=rank.__getitem__):
        match = max(((cosine, j) for j, cosine in neighbours.get(i, []) if j in kept), default=None)
        if match is None:
            kept.add(i)
        else:
            dropped[ids[i]] = (ids[match[1]], round(match[0], 4))
    return dropped


def semantic_dedup_dialogues(dialogues: list[Dialogue], threshold: float, scope: str = "dialogue"
                             ) -> tuple[list[Dialogue], list[Rejection]]:
    """Kept dialogues (input order) and `semantic_duplicate` rejections that carry the dialogue."""
    dropped = semantic_duplicates([d.id for d in dialogues], [dialogue_text(d, scope) for d in dialogues],
                                  threshold, [dialogue_score(d) for d in dialogues])
    kept = [d for d in dialogues if d.id not in dropped]
    rejections = [Rejection(id=d.id, stage="dedup", reasons=["semantic_duplicate"], seed=d.seed, dialogue=d,
                            detail=f"paraphrases {dropped[d.id][0]} (cosine {dropped[d.id][1]:.2f})")
                  for d in dialogues if d.id in dropped]
    return kept, rejections
