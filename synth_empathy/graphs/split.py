"""The held-out scenario split: which catalog situations the RL environment trains on and `eval` tests on.

A situation is held out when the SHA-256 of ``"heldout:" + its id`` falls in the lowest HELD_OUT_SHARE of the hash
range. That depends on the id alone, so the split is the same on every machine and run, and a situation keeps its
side when the catalog grows or shrinks around it (a rank-based split would move situations between sides). A catalog
so small that one side comes out empty moves the situation nearest the boundary across, so both sides have one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import Catalog

HELD_OUT_SHARE = 0.2
Split = Literal["train", "eval"]
SPLITS = ("train", "eval")


def split_point(situation_id: str) -> float:
    """Where a situation falls in [0, 1): below HELD_OUT_SHARE it is held out."""
    digest = hashlib.sha256(f"heldout:{situation_id}".encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def held_out_ids(catalog: Catalog) -> set[str]:
    """The ids of the situations `eval` plays and the training environment never does."""
    points = sorted((split_point(s.id), s.id) for s in catalog.situations)
    held = {sid for point, sid in points if point < HELD_OUT_SHARE}
    if len(points) >= 2 and not held:
        held = {points[0][1]}
    if len(points) >= 2 and len(held) == len(points):
        held.discard(points[-1][1])
    return held


def split_catalog(catalog: Catalog, split: Split) -> Catalog:
    """The catalog with only the situations of `split`; personas, emotions and problem types stay whole."""
    if split not in SPLITS:
        raise UserError(f"split must be train or eval, not {split!r}")
    held = held_out_ids(catalog)
    situations = [s for s in catalog.situations if (s.id in held) == (split == "eval")]
    if not situations:
        raise UserError(f"the catalog has no situation for the {split} split ({len(catalog.situations)} situations "
                        "in all); add situations to the scenarios folder")
    return dataclasses.replace(catalog, situations=situations)
