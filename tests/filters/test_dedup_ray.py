"""Dedup on Ray (a band join) finds exactly what the local dedup finds."""

from __future__ import annotations

import random

import pytest
from texts import spaced, substituted, words

from synth_empathy.config import DedupConfig
from synth_empathy.filters.dedup import find_duplicates

pytest.importorskip("ray")


def test_ray_dedup_equals_local_dedup_on_a_planted_set(local_ray):
    from synth_empathy.filters.dedup_ray import ray_find_duplicates

    rng = random.Random(11)
    texts = []
    for k in range(40):
        base = words(300 + k)
        texts.append(" ".join(base))
        # near copies spanning the threshold, an exact copy in other case, and a chain
        texts.append(" ".join(substituted(base, spaced(rng.randint(2, 14), start=rng.randint(3, 6)))))
        if k % 5 == 0:
            texts.append(" ".join(base).upper())
        if k % 7 == 0:
            texts.append(" ".join(substituted(base, spaced(4, start=120))))
    texts += ["", "?!"]  # no words: never duplicates
    ids = [f"d{i:03d}" for i in range(len(texts))]
    scores = [rng.choice([None, 5.0, 8.0]) for _ in ids]
    config = DedupConfig()
    local = find_duplicates(ids, texts, config, scores)
    assert len(local) > 20 and {d.kind for d in local.values()} == {"exact", "near"}
    assert ray_find_duplicates(ids, texts, config, scores) == local
