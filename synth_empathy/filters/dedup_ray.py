"""Near-duplicate search on Ray Data, as text-dedup, datatrove and NeMo Curator scale it: a band join.

``ray_find_duplicates`` returns what ``filters.dedup.find_duplicates`` returns on the same input:

1. ``map_batches`` computes, in parallel, each text's normalized-text hash, its shingle hashes and its
   band keys with our vectorized ``sketch`` / ``band_keys`` (same seed, scheme and ``lsh_params``).
2. The exact stage (one representative per normalized text, best rank first) runs on the driver over
   the 64-bit text hashes alone, as in the local code.
3. Band join: one row per (representative, band) is grouped by (band, key); every group of two or
   more yields its pairs. A pair is emitted only from the first band it shares, so it is verified once.
4. Candidate pairs are verified by exact Jaccard on the shingle sets in parallel (the sets reach the
   tasks through the object store), with the local code's size bound and threshold.
5. Verified edges go to the local code's connected components and keeper choice (``keepers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from synth_empathy.config import DedupConfig
from synth_empathy.errors import require_extra
from synth_empathy.filters.dedup import (
    MINHASH_SCHEME,
    MINHASH_SEED,
    DuplicateOf,
    band_keys,
    check_inputs,
    keeper_rank,
    keepers,
    lsh_params,
    sketch,
    text_hash,
)
from synth_empathy.text import jaccard, normalize_text

_BATCH = 1024  # texts per signature task


def _sketch_batch(batch: dict[str, np.ndarray], config: DedupConfig, bands: int, rows: int) -> dict[str, Any]:
    """Text hash, distinct sorted shingle hashes and band keys of each text in the batch."""
    normalized = [normalize_text(str(t)).encode() for t in batch["text"]]
    sk = sketch(normalized, config.ngram, config.num_perm, MINHASH_SEED, MINHASH_SCHEME)
    return {"row": batch["row"],
            "text_hash": np.fromiter(map(text_hash, normalized), dtype=np.uint64, count=len(normalized)),
            "empty": np.array([not t for t in normalized]),
            "shingles": [sk.shingle_set(i) for i in range(len(normalized))],
            "keys": list(band_keys(sk.signatures, bands, rows))}


def _band_pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All pairs (a < b) of the items in one (band, key) bucket."""
    items = np.sort(group["row"])
    a, b = np.triu_indices(len(items), k=1)
    return {"a": items[a], "b": items[b], "band": np.full(len(a), group["band"][0] if len(items) else 0)}


def _verify(batch: dict[str, np.ndarray], sets: Any, keys: Any, threshold: float) -> dict[str, np.ndarray]:
    """Pairs at or above the threshold, each counted only in the first band its two items share."""
    import ray

    sets, keys = ray.get(sets), ray.get(keys)  # object-store refs: read in place, shipped once per node
    offsets, hashes = sets["offsets"], sets["hashes"]
    out_a, out_b, out_sim = [], [], []
    for u, v, band in zip(batch["a"].tolist(), batch["b"].tolist(), batch["band"].tolist(), strict=True):
        if int(np.argmax(keys[u] == keys[v])) != band:
            continue
        x, y = hashes[offsets[u]:offsets[u + 1]], hashes[offsets[v]:offsets[v + 1]]
        if min(len(x), len(y)) / max(len(x), len(y)) < threshold:
            continue
        sim = jaccard(x, y)
        if sim >= threshold:
            out_a.append(u)
            out_b.append(v)
            out_sim.append(sim)
    return {"a": np.array(out_a, dtype=np.int64), "b": np.array(out_b, dtype=np.int64),
            "sim": np.array(out_sim, dtype=np.float64)}


def ray_find_duplicates(ids: list[str], texts: Sequence[str], config: DedupConfig,
                        scores: list[float | None] | None = None) -> dict[str, DuplicateOf]:
    """``find_duplicates(ids, texts, config, scores)`` computed on Ray (the current instance, or a new local one).

    Example:
        >>> ray.init(num_cpus=2)
        >>> dropped = ray_find_duplicates(["a", "b"], ["the same words here", "the same words here"], DedupConfig())
        >>> dropped["b"].kept_id
        'a'
    """
    ray = require_extra("ray", "ray", "ray_find_duplicates", name="Ray", submodules=("ray.data",))
    check_inputs(ids, texts, scores)
    if not config.enabled or not ids:
        return {}
    bands, rows = lsh_params(config.threshold, config.num_perm)
    n = len(ids)
    rank = keeper_rank(ids, scores)

    # 1. sketches, in parallel
    texts_ds = ray.data.from_items([{"row": i, "text": texts[i]} for i in range(n)],
                                   override_num_blocks=max(1, -(-n // _BATCH)))
    sketched = texts_ds.map_batches(_sketch_batch, batch_size=_BATCH, batch_format="numpy",
                                    fn_kwargs={"config": config, "bands": bands, "rows": rows}).materialize()
    table = sketched.to_pandas().sort_values("row")
    hashes_by_row = table["text_hash"].to_numpy(dtype=np.uint64)
    empty = table["empty"].to_numpy(dtype=bool)

    # 2. exact stage, as in find_duplicates (no index here)
    exact_of: dict[int, int] = {}
    first: dict[int, int] = {}
    reps: list[int] = []
    for i in sorted(range(n), key=rank.__getitem__):
        h = int(hashes_by_row[i])
        if h in first:
            exact_of[i] = first[h]
        else:
            reps.append(i)
            if not empty[i]:
                first[h] = i
    shingle_sets = list(table["shingles"])
    lengths = np.array([len(s) for s in shingle_sets], dtype=np.int64)
    near_items = np.array(sorted(i for i in reps if lengths[i] > 0), dtype=np.int64)

    # 3. band join over the representatives that have shingles
    edges: list[tuple[int, int, float]] = []
    if len(near_items) > 1:
        keys = np.stack(list(table["keys"])).astype(np.uint64)
        bucket_rows = {"row": np.repeat(near_items, bands), "band": np.tile(np.arange(bands), len(near_items)),
                       "key": keys[near_items].reshape(-1)}
        buckets = ray.data.from_arrow(pa.table(bucket_rows))
        # A shuffle partition per ~50k bucket rows: small inputs are not spread over many tiny tasks.
        partitions = max(1, min(64, len(bucket_rows["row"]) // 50_000))
        pairs = buckets.groupby(["band", "key"], num_partitions=partitions).map_groups(
            _band_pairs, batch_format="numpy")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(shingle_sets).astype(np.uint64) if offsets[-1] else np.empty(0, dtype=np.uint64)
        sets_ref, keys_ref = ray.put({"offsets": offsets, "hashes": flat}), ray.put(keys)
        verified = pairs.map_batches(_verify, batch_format="numpy", batch_size=4096,
                                     fn_kwargs={"sets": sets_ref, "keys": keys_ref, "threshold": config.threshold})
        for block in verified.iter_batches(batch_size=None, batch_format="numpy"):
            edges.extend(zip(block["a"].tolist(), block["b"].tolist(), block["sim"].tolist(), strict=True))

    # 5. components and keepers, as in find_duplicates
    dropped = keepers(rank, [False] * n, sorted(edges))
    result = {ids[item]: DuplicateOf(ids[target], "near", sim) for item, (target, sim) in dropped.items()}
    for i, rep in exact_of.items():
        result[ids[i]] = result.get(ids[rep], DuplicateOf(ids[rep], "exact", 1.0))
    return result
