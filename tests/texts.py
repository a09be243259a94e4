"""Word lists with planted near-copies, for the dedup tests (local and on Ray)."""

from __future__ import annotations

import random

VOCAB = [f"w{i}" for i in range(5000)]


def words(seed: int, n: int = 200) -> list[str]:
    return random.Random(seed).choices(VOCAB, k=n)


def substituted(base: list[str], positions: list[int]) -> list[str]:
    """Replace the words at ``positions`` with words that occur nowhere else."""
    out = list(base)
    for p in positions:
        out[p] = f"new{p}"
    return out


def spaced(count: int, start: int = 3, step: int = 7) -> list[int]:
    """Positions far enough apart (and from the ends) that each substitution changes 3 distinct trigrams."""
    return [start + step * k for k in range(count)]
