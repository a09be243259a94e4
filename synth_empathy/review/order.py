"""Review what matters first: the judge's uncertain cases, then a seeded random slice of the rest.

A label says most where the judge was least sure: a score close to a keep threshold (a point either way
flips the verdict) or judge samples that disagree. Those come first, closest call first; everything else,
unscored dialogues included, follows in a seeded shuffle so a reviewer who stops early still leaves an
unbiased sample behind.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from synth_empathy.review.items import ReviewItem
from synth_empathy.schema import Scores

NEAR = 1.0  # a score within this many points of its threshold is a close call
SPREAD = 2.0  # judge samples this far apart on a 0-10 score disagree


def margin(scores: Scores, thresholds: Mapping[str, float]) -> float:
    """How far the closest score is from its keep threshold (0: right on it)."""
    return min(abs(getattr(scores, metric) - t) for metric, t in thresholds.items())


def max_spread(scores: Scores) -> float:
    return max((scores.spread or {}).values(), default=0.0)


def review_order(items: Sequence[ReviewItem], thresholds: Mapping[str, float], seed: int = 0) -> list[ReviewItem]:
    """Uncertain items (why="near threshold" or "judge samples disagree") by how close a call they are, then
    the rest shuffled with `seed` (why="random"). The same items and seed give the same order."""
    uncertain: list[tuple[float, str, ReviewItem]] = []
    rest: list[ReviewItem] = []
    for item in sorted(items, key=lambda it: it.id):
        s = item.dialogue.scores
        if s is None:
            rest.append(item)
            continue
        m, spread = margin(s, thresholds), max_spread(s)
        if m <= NEAR or spread >= SPREAD:
            item.why = "near threshold" if m <= NEAR else "judge samples disagree"
            # closeness in threshold units, minus how much the samples disagree: both mean "unsure"
            uncertain.append((m / NEAR - spread / SPREAD, item.id, item))
        else:
            rest.append(item)
    random.Random(seed).shuffle(rest)
    for item in rest:
        item.why = "random"
    return [item for *_, item in sorted(uncertain, key=lambda t: (t[0], t[1]))] + rest
