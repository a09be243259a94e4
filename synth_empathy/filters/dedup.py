"""Near-duplicate removal: exact copies by a normalized-text hash, near copies by MinHash LSH.

How one batch is deduplicated (``find_duplicates``):

1. Normalize each text (lowercase, no punctuation, single spaces) and hash it with xxh3-64: equal
   hashes are exact duplicates, and only one text per hash goes on to the near-duplicate stage.
2. Cut the normalized text into word n-grams ("shingles") and hash each: every word is hashed once
   with xxh3-64 and the n word hashes of a shingle are folded into one 64-bit hash with numpy
   (``minhash_hashfunc`` is the same function of the shingle's bytes). Hashing words instead of
   joined shingles does a third of the Python-level work, which is most of the cost. The 64-bit
   hashes are what exact Jaccard is computed on; their low 32 bits feed MinHash.
3. Build all MinHash signatures at once with numpy. They are bit-identical to
   ``datasketch.MinHash(num_perm, seed, scheme, hashfunc=minhash_hashfunc)``, so the signatures can
   be handed to ``datasketch.MinHash(hashvalues=...)`` / ``LeanMinHash`` and back.
4. LSH: split each signature into ``b`` bands of ``r`` rows; texts sharing any whole band are
   candidates. Every candidate is verified with exact Jaccard on the shingle-hash sets, so no pair
   below the threshold is ever reported.
5. Verified pairs are grouped with union-find; inside a group the best item (index items first, then
   highest score, then smallest id) is kept and every other item is dropped only if it is itself
   verified to be similar to a kept item.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import xxhash

from synth_empathy.config import DedupConfig
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Rejection
from synth_empathy.text import jaccard, normalized_bytes, shingles, words

# Seed of the MinHash permutations. DedupConfig has no field for it yet; 1 is datasketch's default,
# so a plain ``datasketch.MinHash(num_perm=...)`` with our hashfunc reproduces our signatures.
MINHASH_SEED = 1
# datasketch >= 2.0 permutation scheme. "affine32" (datasketch's default) computes a*h+b mod 2**32
# on uint32, which numpy vectorizes well and which is a bijection (no collisions added by the
# permutation). "legacy" ((a*h+b) mod (2**61-1), masked to 32 bits) is supported for interop with
# sketches made by datasketch < 2.0, at about half the speed.
MINHASH_SCHEME: Literal["affine32", "legacy"] = "affine32"
# (false-positive weight, false-negative weight) for choosing the LSH bands. Every candidate is
# verified exactly, so a false positive costs one Jaccard computation while a false negative is a
# duplicate we never see: weigh toward recall. See ``lsh_params``.
LSH_WEIGHTS = (0.05, 0.95)
# Shingles per block in the signature computation: the (num_perm x block) uint32 product is 4 MiB
# at num_perm=128, small enough to stay in cache between the multiply, add and min passes.
_BLOCK_SHINGLES = 8192
# Texts per step of ``sketch``: their words are split and hashed together (a few MB of bytes objects).
_BLOCK_TEXTS = 2048
# 2: shingle hashes fold word hashes (format 1 hashed joined shingles); an older index cannot be compared.
_INDEX_FORMAT = 2

_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_LOW32 = np.uint64(0xFFFFFFFF)
_EMPTY_VALUE = {"affine32": np.uint32(0xFFFFFFFF), "legacy": np.uint64(0xFFFFFFFF)}
# Odd 64-bit multiplier (from splitmix64) for folding a band's rows into one key.
_BAND_MULT = np.uint64(0x9E3779B97F4A7C15)
_FMIX64_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX64_2 = np.uint64(0xC4CEB9FE1A85EC53)

_EMPTY_TEXT_HASH = xxhash.xxh3_64_intdigest(b"")

Kind = Literal["exact", "near"]


class DuplicateOf(NamedTuple):
    """Why an item was dropped: the kept item it duplicates, how, and their exact shingle Jaccard."""

    kept_id: str
    kind: Kind
    jaccard: float


# ------------------------------------------------------------------ text -> shingle hashes


def text_hash(normalized: bytes) -> int:
    """64-bit hash of a normalized text; equal hashes mean exact duplicates."""
    return xxhash.xxh3_64_intdigest(normalized)


def readable_shingles(text: str, ngram: int) -> list[str]:
    """The word n-grams of a text after normalization (readable form of ``shingle_hashes``)."""
    return [" ".join(g) for g in shingles(words(text), ngram)]


def shingle_count(normalized: bytes, ngram: int) -> int:
    """How many shingles ``shingle_hashes`` yields: tokens are separated by exactly one space."""
    return max(normalized.count(b" ") + 2 - ngram, 1) if normalized else 0


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: the fold below is linear, this spreads every bit into the low 32."""
    h = h ^ (h >> np.uint64(33))
    h *= _FMIX64_1
    h ^= h >> np.uint64(33)
    h *= _FMIX64_2
    h ^= h >> np.uint64(33)
    return h


def _fold(word_hashes: np.ndarray, width: int) -> np.ndarray:
    """Hash of each run of ``width`` consecutive word hashes: fmix64(sum of w[i + j] * M**(width-1-j))."""
    count = len(word_hashes) - width + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    folded = word_hashes[:count].copy()
    for j in range(1, width):
        folded *= _BAND_MULT  # uint64 arithmetic wraps: the fold is mod 2**64
        folded += word_hashes[j:j + count]
    return _fmix64(folded)


def shingle_hashes_of(normalized: Sequence[bytes], ngram: int) -> np.ndarray:
    """Every text's shingle hashes, back to back in text order (``shingle_count`` of them per text)."""
    counts = np.fromiter((t.count(b" ") + 1 if t else 0 for t in normalized), dtype=np.int64, count=len(normalized))
    nonempty = [t for t in normalized if t]
    tokens = b" ".join(nonempty).split(b" ") if nonempty else []
    word_hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, tokens), dtype=np.uint64, count=len(tokens))
    ends = np.cumsum(counts)
    # A run starting at word p is a shingle when the text p belongs to has ngram words left from p.
    left = np.repeat(ends, counts)[:max(len(tokens) - ngram + 1, 0)] - np.arange(max(len(tokens) - ngram + 1, 0))
    full = _fold(word_hashes, ngram)[left >= ngram]
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if not len(short):
        return full
    # A text shorter than one shingle is one shingle of all its words (see text.shingles).
    per_text = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    slots = np.cumsum(per_text) - 1
    out = np.empty(int(per_text.sum()), dtype=np.uint64)
    mask = np.ones(len(out), dtype=bool)
    mask[slots[short]] = False
    out[mask] = full
    starts = ends - counts
    out[slots[short]] = [_fold(word_hashes[starts[i]:ends[i]], int(counts[i]))[0] for i in short.tolist()]
    return out


def shingle_hashes(normalized: bytes, ngram: int) -> np.ndarray:
    """64-bit hash of every word n-gram of a normalized UTF-8 text (``normalize_text`` output), in order."""
    return shingle_hashes_of([normalized], ngram)


def minhash_hashfunc(shingle: bytes) -> int:
    """The 32-bit shingle hash MinHash uses; pass it as ``datasketch.MinHash(hashfunc=...)``.

    ``shingle`` is the n-gram's words joined by single spaces (a ``readable_shingles`` item, encoded).
    """
    mask, mult = (1 << 64) - 1, int(_BAND_MULT)
    folded = 0
    for token in shingle.split(b" "):  # ``_fold`` in Python integers, mod 2**64
        folded = (folded * mult + xxhash.xxh3_64_intdigest(token)) & mask
    for shift, factor in ((33, int(_FMIX64_1)), (33, int(_FMIX64_2)), (33, 1)):
        folded = ((folded ^ (folded >> shift)) * factor) & mask
    return folded & 0xFFFFFFFF


# ------------------------------------------------------------------ MinHash signatures


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own permutation parameters (a, b), so equal seeds give equal signatures.

    Drawn the way ``datasketch.MinHash._init_permutations`` (2.0) draws them rather than by building a
    MinHash: importing datasketch imports scipy (for its LSH), which is a second of start-up for every
    command. tests/filters/test_dedup.py pins the signatures to datasketch's own.
    """
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        pairs = [(gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64), gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64))
                 for _ in range(num_perm)]
        a, b = np.array(pairs, dtype=np.uint64).T
        return a.copy(), b.copy()
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch applies before affine32 permutations."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _permute(hashes: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: str) -> np.ndarray:
    """All permuted values of a block of 64-bit shingle hashes: shape (num_perm, len(hashes))."""
    low = hashes & _LOW32
    if scheme == "affine32":
        # uint32 arithmetic wraps, which is exactly datasketch's "mod 2**32".
        out = np.multiply.outer(a, _fmix32(low.astype(np.uint32)))
        out += b[:, None]
        return out
    # legacy: datasketch computes (a*h + b) % p in uint64, letting a*h + b wrap mod 2**64 first.
    out = np.multiply.outer(a, low)
    out += b[:, None]
    # x mod (2**61 - 1) without a division: 2**61 = 1 (mod p), so fold the top 3 bits onto the rest,
    # leaving a value below 2p that one conditional subtraction brings into [0, p).
    out = (out & _MERSENNE_PRIME) + (out >> np.uint64(61))
    np.subtract(out, _MERSENNE_PRIME, out=out, where=out >= _MERSENNE_PRIME)
    out &= _LOW32
    return out


def _doc_blocks(offsets: np.ndarray, block: int) -> Iterable[tuple[int, int]]:
    """Consecutive document ranges holding about ``block`` shingles each (never splitting a document)."""
    total = int(offsets[-1])
    cuts = np.searchsorted(offsets, np.arange(block, total, block), side="right") - 1
    bounds = np.unique(np.concatenate(([0], cuts, [len(offsets) - 1])))
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int = MINHASH_SEED,
                       scheme: str = MINHASH_SCHEME) -> np.ndarray:
    """MinHash signatures of many documents, shape (n_docs, num_perm).

    ``hashes`` holds the 64-bit shingle hashes of all documents back to back; document i owns
    ``hashes[offsets[i]:offsets[i + 1]]``. Row i equals the ``hashvalues`` of
    ``datasketch.MinHash(num_perm, seed=seed, scheme=scheme, hashfunc=minhash_hashfunc)`` updated
    with document i's shingles. A document without shingles gets datasketch's empty signature.
    """
    a, b = _permutations(num_perm, seed, scheme)
    offsets = np.asarray(offsets, dtype=np.int64)
    sig = np.full((len(offsets) - 1, num_perm), _EMPTY_VALUE[scheme], dtype=a.dtype)
    for d0, d1 in _doc_blocks(offsets, _BLOCK_SHINGLES):
        starts = offsets[d0:d1]
        nonempty = offsets[d0 + 1:d1 + 1] > starts
        if not nonempty.any():
            continue
        permuted = _permute(hashes[starts[0]:offsets[d1]], a, b, scheme)
        # One min per (permutation, document) segment; empty documents are skipped because
        # reduceat would return the next element for them instead of the identity.
        sig[d0:d1][nonempty] = np.minimum.reduceat(permuted, starts[nonempty] - starts[0], axis=1).T
    return sig


class Sketches(NamedTuple):
    """Shingle hashes (back to back, split by ``offsets``) and MinHash signatures of some texts."""

    hashes: np.ndarray
    offsets: np.ndarray
    signatures: np.ndarray

    def shingle_set(self, i: int) -> np.ndarray:
        """Distinct shingle hashes of text i, sorted."""
        return np.unique(self.hashes[self.offsets[i]:self.offsets[i + 1]])

    def take(self, rows: np.ndarray) -> Sketches:
        """The sketches of the texts at ``rows`` (ascending), in that order."""
        lengths = np.diff(self.offsets)
        mask = np.zeros(len(lengths), dtype=bool)
        mask[rows] = True
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths[rows], out=offsets[1:])
        return Sketches(self.hashes[np.repeat(mask, lengths)], offsets, self.signatures[rows])


def sketch(normalized: Sequence[bytes], ngram: int, num_perm: int, seed: int = MINHASH_SEED,
           scheme: str = MINHASH_SCHEME) -> Sketches:
    """Shingle hashes and MinHash signatures of normalized UTF-8 texts."""
    offsets = np.zeros(len(normalized) + 1, dtype=np.int64)
    counts = (shingle_count(t, ngram) for t in normalized)
    np.cumsum(np.fromiter(counts, dtype=np.int64, count=len(normalized)), out=offsets[1:])
    # Filled in place rather than concatenated from per-text arrays, so the hashes exist only once.
    hashes = np.empty(offsets[-1], dtype=np.uint64)
    for start in range(0, len(normalized), _BLOCK_TEXTS):
        stop = min(start + _BLOCK_TEXTS, len(normalized))
        hashes[offsets[start]:offsets[stop]] = shingle_hashes_of(normalized[start:stop], ngram)
    return Sketches(hashes, offsets, minhash_signatures(hashes, offsets, num_perm, seed, scheme))


# ------------------------------------------------------------------ LSH


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = LSH_WEIGHTS) -> tuple[int, int]:
    """Bands b and rows r (b * r <= num_perm) minimizing the weighted false positive/negative area.

    Two texts with Jaccard s agree on one MinHash row with probability s, on a whole band of r rows
    with s**r, and share at least one of b bands with P(s) = 1 - (1 - s**r)**b: an S-curve whose
    steep part sits near (1/b)**(1/r). The false-positive area is the integral of P over [0, t], the
    false-negative area the integral of 1 - P over [t, 1]; like datasketch's MinHashLSH we pick the
    (b, r) minimizing their weighted sum (it gives the same answer, vectorized instead of scipy).
    With t=0.8, 128 permutations and weights (0.05, 0.95) this is b=16, r=8: P(0.8)=0.95,
    P(0.85)=0.99, P(0.5)=0.06, P(0.3)=0.001, i.e. nearly every pair at the threshold becomes a
    candidate while unrelated texts almost never do.
    """
    fp_weight, fn_weight = weights
    br = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=float)
    b, r = br[:, :1], br[:, 1:]
    below = np.linspace(0.0, threshold, 1001)
    above = np.linspace(threshold, 1.0, 1001)
    false_pos = np.trapezoid(1 - (1 - below**r) ** b, below, axis=1)
    false_neg = np.trapezoid((1 - above**r) ** b, above, axis=1)
    best = int(np.argmin(fp_weight * false_pos + fn_weight * false_neg))
    return int(br[best, 0]), int(br[best, 1])


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band), shape (n, bands); equal bands give equal keys."""
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    grouped = signatures[:, :bands * rows].reshape(len(signatures), bands, rows)
    # Polynomial fold of the rows. Different bands can collide on a key; that only adds a candidate,
    # which exact verification then rejects.
    for row in range(rows):
        keys *= _BAND_MULT
        keys += grouped[:, :, row]
    return keys


def candidate_pairs(keys: np.ndarray, is_new: np.ndarray) -> np.ndarray:
    """Distinct pairs (i < j) sharing at least one band key, skipping pairs of two old items."""
    found = []
    everything = np.arange(len(keys))
    for band in range(keys.shape[1]):
        column = keys[:, band]
        # Only buckets holding a new item matter: with a large index and a small batch this sorts a
        # few rows instead of the whole index.
        rows = everything if is_new.all() else np.flatnonzero(is_new | np.isin(column, column[is_new]))
        order = rows[np.argsort(column[rows], kind="stable")]
        column = column[order]
        same = column[1:] == column[:-1]  # sorted positions p and p+1 share a bucket
        pos = np.flatnonzero(same)
        gap = 1
        # Pair sorted positions p and p+gap while they are in one bucket; each round lengthens the
        # gap, so a bucket of k items yields its k*(k-1)/2 pairs over k-1 rounds.
        while pos.size:
            found.append(np.stack([order[pos], order[pos + gap]], axis=1))
            pos = pos[pos + gap < same.size]
            pos = pos[same[pos + gap]]
            gap += 1
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1).astype(np.int64)
    pairs = pairs[is_new[pairs[:, 0]] | is_new[pairs[:, 1]]]
    codes = np.unique(pairs[:, 0] * len(keys) + pairs[:, 1])
    return np.stack([codes // len(keys), codes % len(keys)], axis=1)


# ------------------------------------------------------------------ grouping


def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the items 0..n-1 that have an edge, by union-find."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps the trees flat
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = root(u), root(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    groups: dict[int, list[int]] = defaultdict(list)
    for x in sorted({x for edge in edges for x in edge}):
        groups[root(x)].append(x)
    return list(groups.values())


def keepers(rank: Sequence[int], is_old: Sequence[bool],
             edges: list[tuple[int, int, float]]) -> dict[int, tuple[int, float]]:
    """Drop map {item: (kept item, jaccard)} for items linked by verified edges.

    Within each component items are visited best rank first: old (index) items are always kept, a
    new item is dropped if it is verified-similar to an already kept item (the most similar one),
    otherwise kept. Plain "one keeper per component" would also drop chain members (A~B, B~C, but
    A !~ C) that are not similar to the keeper; this way every drop names a kept item at or above
    the threshold.
    """
    neighbours: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for u, v, sim in edges:
        neighbours[u].append((v, sim))
        neighbours[v].append((u, sim))
    dropped: dict[int, tuple[int, float]] = {}
    for members in _components(len(rank), [(u, v) for u, v, _ in edges]):
        kept: set[int] = set()
        for item in sorted(members, key=rank.__getitem__):
            matches = [(sim, -rank[other], other) for other, sim in neighbours[item] if other in kept]
            if is_old[item] or not matches:
                kept.add(item)
            else:
                sim, _, other = max(matches)
                dropped[item] = (other, sim)
    return dropped


def keeper_rank(ids: Sequence[str], scores: Sequence[float | None] | None) -> list[int]:
    """Keeper preference of each item (0 = best): highest score first, then smallest id."""

    def key(i: int) -> tuple[float, str]:
        score = scores[i] if scores is not None else None
        if score is None or score != score:  # unscored or NaN: after every scored item
            score = float("-inf")
        return (-score, ids[i])

    rank = [0] * len(ids)
    for position, i in enumerate(sorted(range(len(ids)), key=key)):
        rank[i] = position
    return rank


# ------------------------------------------------------------------ streaming index


class _Buffer:
    """A numpy array grown by doubling, so appending rows one batch at a time stays cheap."""

    def __init__(self, dtype: type, width: int | None = None, initial: np.ndarray | None = None) -> None:
        shape = (16,) if width is None else (16, width)
        self._data = np.empty(shape, dtype=dtype)
        self._size = 0
        if initial is not None:
            self.append(initial)

    def append(self, rows: np.ndarray) -> None:
        need = self._size + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)),) + self._data.shape[1:], dtype=self._data.dtype)
            grown[:self._size] = self._data[:self._size]
            self._data = grown
        self._data[self._size:need] = rows
        self._size = need

    @property
    def array(self) -> np.ndarray:
        return self._data[:self._size]


class DedupIndex:
    """The kept corpus so far: ids, normalized-text hashes, signatures and shingle hashes.

    New texts are checked against everything in the index, and items in the index always win over
    new ones. Persist with ``save``/``load`` (a numpy .npz file, no pickle). Not thread-safe: callers
    that share one index between threads hold a lock around query + add.
    """

    def __init__(self, config: DedupConfig, seed: int = MINHASH_SEED, scheme: str = MINHASH_SCHEME) -> None:
        self.config = config
        self.seed = seed
        self.scheme = scheme
        self.bands, self.rows = lsh_params(config.threshold, config.num_perm)
        sig_dtype = np.uint32 if scheme == "affine32" else np.uint64
        self._ids: list[str] = []
        self._position: dict[str, int] = {}
        self._exact: dict[int, int] = {}  # text hash -> first item with it
        self._text_hashes = _Buffer(np.uint64)
        self._signatures = _Buffer(sig_dtype, config.num_perm)
        self._keys = _Buffer(np.uint64, self.bands)
        self._hashes = _Buffer(np.uint64)
        self._offsets = _Buffer(np.int64, initial=np.zeros(1, dtype=np.int64))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._position

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def id_at(self, position: int) -> str:
        return self._ids[position]

    def compatible(self, config: DedupConfig) -> bool:
        """Whether texts checked with ``config`` can be compared with this index."""
        mine, theirs = self.config, config
        return (mine.threshold, mine.num_perm, mine.ngram, mine.scope) == (
            theirs.threshold, theirs.num_perm, theirs.ngram, theirs.scope)

    def sketches(self) -> Sketches:
        """The index's shingle hashes and signatures (views, do not modify)."""
        return Sketches(self._hashes.array, self._offsets.array, self._signatures.array)

    def band_keys(self) -> np.ndarray:
        return self._keys.array

    def position_of_text(self, text_hash_value: int) -> int | None:
        """Index position of the first item whose normalized text has this hash."""
        return self._exact.get(text_hash_value)

    def add(self, item_id: str, text: str) -> None:
        """Add one text unconditionally (check it with ``query`` first)."""
        self.add_many([item_id], [text])

    def add_many(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add texts unconditionally, e.g. an earlier kept corpus."""
        normalized = [normalized_bytes(t) for t in texts]
        hashes = np.fromiter(map(text_hash, normalized), dtype=np.uint64, count=len(normalized))
        self._append(list(ids), hashes, sketch(normalized, self.config.ngram, self.config.num_perm,
                                               self.seed, self.scheme))

    def _append(self, ids: list[str], hashes: np.ndarray, sketches: Sketches) -> None:
        clash = next((i for i in ids if i in self._position), None)
        if clash is not None or len(set(ids)) != len(ids):
            raise ValueError(f"duplicate id {clash or '(within the batch)'} for the dedup index")
        start = len(self._ids)
        for offset, (item_id, h) in enumerate(zip(ids, hashes.tolist(), strict=True)):
            self._position[item_id] = start + offset
            if h != _EMPTY_TEXT_HASH:  # a text without words duplicates nothing
                self._exact.setdefault(h, start + offset)
        self._ids.extend(ids)
        self._text_hashes.append(hashes)
        self._signatures.append(sketches.signatures)
        self._keys.append(band_keys(sketches.signatures, self.bands, self.rows))
        self._hashes.append(sketches.hashes)
        self._offsets.append(sketches.offsets[1:] + self._offsets.array[-1])

    def query(self, text: str) -> DuplicateOf | None:
        """The index item this text duplicates (exact first, else the most similar near one), if any."""
        normalized = normalized_bytes(text)
        position = self._exact.get(text_hash(normalized))
        if position is not None:
            return DuplicateOf(self._ids[position], "exact", 1.0)
        if not self._ids or not normalized:
            return None
        mine = sketch([normalized], self.config.ngram, self.config.num_perm, self.seed, self.scheme)
        keys = band_keys(mine.signatures, self.bands, self.rows)
        candidates = np.flatnonzero((self._keys.array == keys).any(axis=1))
        shingle_set = mine.shingle_set(0)
        theirs = self.sketches()
        best: DuplicateOf | None = None
        for position in candidates.tolist():
            sim = jaccard(shingle_set, theirs.shingle_set(position))
            if sim >= self.config.threshold and (best is None or sim > best.jaccard):
                best = DuplicateOf(self._ids[position], "near", sim)
        return best

    def query_many(self, texts: Sequence[str]) -> list[DuplicateOf | None]:
        """``query`` for a batch, vectorized: each text against the index only (never against each other)."""
        normalized = [normalized_bytes(t) for t in texts]
        found: list[DuplicateOf | None] = [None] * len(texts)
        for i, text in enumerate(normalized):
            position = self._exact.get(text_hash(text))
            if position is not None:
                found[i] = DuplicateOf(self._ids[position], "exact", 1.0)
        rest = np.array([i for i, text in enumerate(normalized) if found[i] is None and text], dtype=np.int64)
        if not len(rest) or not self._ids:
            return found
        mine = sketch([normalized[i] for i in rest], self.config.ngram, self.config.num_perm, self.seed, self.scheme)
        theirs = self.sketches()
        pairs = self._band_matches(band_keys(mine.signatures, self.bands, self.rows))
        for row, position in pairs.tolist():
            a, b = mine.shingle_set(row), theirs.shingle_set(position)
            if min(len(a), len(b)) / max(len(a), len(b)) < self.config.threshold:
                continue  # the sizes alone rule the threshold out (see _near_duplicates)
            sim = jaccard(a, b)
            best = found[rest[row]]
            if sim >= self.config.threshold and (best is None or sim > best.jaccard):
                found[rest[row]] = DuplicateOf(self._ids[position], "near", sim)
        return found

    def _band_matches(self, keys: np.ndarray) -> np.ndarray:
        """Distinct (row of `keys`, index position) pairs sharing a band key: per band, the index's keys are
        sorted once and every new key finds its bucket by binary search."""
        found = []
        stored = self._keys.array
        for band in range(self.bands):
            order = np.argsort(stored[:, band], kind="stable")
            column = stored[order, band]
            lo = np.searchsorted(column, keys[:, band], side="left")
            counts = np.searchsorted(column, keys[:, band], side="right") - lo
            if not counts.any():
                continue
            rows = np.repeat(np.arange(len(keys)), counts)
            # Position k of row r's bucket is order[lo[r] + k]: an arange that restarts at each row's lo.
            starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            found.append(np.stack([rows, order[starts + np.arange(len(rows))]], axis=1))
        if not found:
            return np.empty((0, 2), dtype=np.int64)
        return np.unique(np.concatenate(found), axis=0)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (.npz, replaced atomically)."""
        path = Path(path)
        meta = {"format": _INDEX_FORMAT, "seed": self.seed, "scheme": self.scheme,
                "config": self.config.model_dump(mode="json")}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), ids=np.array(self._ids, dtype=str),
                     text_hashes=self._text_hashes.array, signatures=self._signatures.array,
                     hashes=self._hashes.array, offsets=self._offsets.array)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, config: DedupConfig | None = None) -> DedupIndex:
        """Read an index written by ``save``; ``config`` (if given) must agree on num_perm, ngram and scope."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in ("ids", "text_hashes", "signatures", "hashes", "offsets")}
            if meta.get("format") != _INDEX_FORMAT:
                raise ValueError(f"format {meta.get('format')}, expected {_INDEX_FORMAT}")
            stored = DedupConfig.model_validate(meta["config"])
        except (OSError, KeyError, ValueError) as exc:  # ValueError covers JSON and pydantic errors
            raise UserError(f"dedup index {path} cannot be read: {exc}") from exc
        if config is not None:
            fields = ("num_perm", "ngram", "scope")
            if any(getattr(stored, f) != getattr(config, f) for f in fields):
                raise UserError(f"dedup index {path} was built with "
                                + ", ".join(f"{f}={getattr(stored, f)}" for f in fields)
                                + "; the config asks for "
                                + ", ".join(f"{f}={getattr(config, f)}" for f in fields))
        index = cls(config or stored, seed=meta["seed"], scheme=meta["scheme"])
        offsets = arrays["offsets"]
        index._append([str(i) for i in arrays["ids"]], arrays["text_hashes"],
                      Sketches(arrays["hashes"], offsets - offsets[0], arrays["signatures"]))
        return index


# ------------------------------------------------------------------ batch API


def check_inputs(ids: Sequence[str], texts: Sequence[str] | Sequence[bytes],
                 scores: Sequence[float | None] | None) -> None:
    if len(ids) != len(texts) or (scores is not None and len(scores) != len(ids)):
        raise ValueError("ids, texts and scores must have the same length")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")


def find_duplicates(ids: list[str], texts: Sequence[str], config: DedupConfig,
                    scores: list[float | None] | None = None,
                    index: DedupIndex | None = None) -> dict[str, DuplicateOf]:
    """Map every dropped id to the kept id it duplicates, the kind ("exact"/"near") and the Jaccard.

    Ids not in the result are kept. Keeper order: index items, then highest score (None/NaN score
    last), then smallest id. With an ``index`` the batch is also checked against it, ids already in
    the index count as kept and are skipped, and the newly kept items are added to the index.
    """
    check_inputs(ids, texts, scores)
    return find_normalized_duplicates(ids, _Normalized(texts), config, scores, index)


class _Normalized(Sequence[bytes]):
    """``normalized_bytes`` of each text, made when read, so only the texts still needed are normalized."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]  # ints only, no slices
        return normalized_bytes(self._texts[i])


def find_normalized_duplicates(ids: list[str], normalized: Sequence[bytes], config: DedupConfig,
                               scores: list[float | None] | None = None,
                               index: DedupIndex | None = None) -> dict[str, DuplicateOf]:
    """``find_duplicates`` on texts already normalized (``text.normalized_bytes``): a reader that streams
    records can keep these bytes alone instead of every raw text next to them."""
    check_inputs(ids, normalized, scores)
    if not config.enabled or not ids:
        return {}
    if index is not None and not index.compatible(config):
        raise ValueError("the dedup index was built with different threshold/num_perm/ngram/scope")
    old = index if index is not None else DedupIndex(config)
    fresh = [i for i, item_id in enumerate(ids) if item_id not in old]
    ids = [ids[i] for i in fresh]
    if not ids:
        return {}
    rank = keeper_rank(ids, [scores[i] for i in fresh] if scores is not None else None)
    normalized = [normalized[i] for i in fresh]
    hashes = np.fromiter(map(text_hash, normalized), dtype=np.uint64, count=len(normalized))

    # Exact stage: in rank order the first item with a hash represents it, unless the index has it.
    in_index: dict[int, str] = {}  # item -> id of the index item with the same text
    exact_of: dict[int, int] = {}  # item -> batch item with the same text that represents it
    first: dict[int, int] = {}
    reps_list = []
    for i in sorted(range(len(ids)), key=rank.__getitem__):
        h = int(hashes[i])
        position = old.position_of_text(h)
        if position is not None:
            in_index[i] = old.id_at(position)
        elif h in first:
            exact_of[i] = first[h]
        else:
            reps_list.append(i)
            if normalized[i]:  # a text without words duplicates nothing, not even another empty one
                first[h] = i
    reps = np.array(sorted(reps_list), dtype=np.int64)

    # Near stage on index items (0..m-1) and representatives (m + row).
    m = len(old)
    near, sketches = _near_duplicates(old, [normalized[i] for i in reps], [rank[i] for i in reps], config)
    result = {ids[i]: DuplicateOf(kept_id, "exact", 1.0) for i, kept_id in in_index.items()}
    for row, (target, sim) in near.items():
        kept_id = old.id_at(target) if target < m else ids[reps[target - m]]
        result[ids[reps[row]]] = DuplicateOf(kept_id, "near", sim)
    for i, rep in exact_of.items():
        # Same text as its representative, so it shares the representative's fate.
        result[ids[i]] = result.get(ids[rep], DuplicateOf(ids[rep], "exact", 1.0))
    if index is not None:
        rows = np.array([row for row in range(len(reps)) if row not in near], dtype=np.int64)
        index._append([ids[i] for i in reps[rows]], hashes[reps[rows]], sketches.take(rows))
    return result


def _near_duplicates(old: DedupIndex, normalized: list[bytes], rep_rank: list[int],
                     config: DedupConfig) -> tuple[dict[int, tuple[int, float]], Sketches]:
    """Near duplicates among new texts and against the index, plus the new texts' sketches.

    Returns {row of a dropped text: (item it duplicates, jaccard)} where an item below len(old) is an
    index position and item len(old) + row is the text at that row.
    """
    new = sketch(normalized, config.ngram, config.num_perm, old.seed, old.scheme)
    m = len(old)
    stored = old.sketches()
    keys = np.concatenate([old.band_keys(), band_keys(new.signatures, old.bands, old.rows)])
    is_new = np.arange(len(keys)) >= m
    # Texts without shingles share the all-max signature; leave them out of LSH, which would
    # otherwise pair all of them with each other.
    lengths = np.concatenate([np.diff(stored.offsets), np.diff(new.offsets)])
    items = np.flatnonzero(lengths > 0)
    sets: dict[int, np.ndarray] = {}

    def shingle_set(item: int) -> np.ndarray:
        if item not in sets:
            sets[item] = stored.shingle_set(item) if item < m else new.shingle_set(item - m)
        return sets[item]

    edges = []
    for u, v in items[candidate_pairs(keys[items], is_new[items])].tolist():
        a, b = shingle_set(u), shingle_set(v)
        # |A n B| / |A u B| <= min/max size: skip pairs whose sizes alone rule out the threshold.
        if min(len(a), len(b)) / max(len(a), len(b)) < config.threshold:
            continue
        sim = jaccard(a, b)
        if sim >= config.threshold:
            edges.append((u, v, sim))
    rank = list(range(m)) + [m + r for r in rep_rank]
    dropped = keepers(rank, [True] * m + [False] * len(normalized), edges)
    return {item - m: target for item, target in dropped.items()}, new


def dialogue_text(d: Dialogue, scope: str) -> str:
    """The text compared for duplicates: every turn ("dialogue") or only supporter turns ("supporter")."""
    return scoped_text(((t.role, t.text) for t in d.turns), scope)


def scoped_text(turns: Iterable[tuple[str, str]], scope: str) -> str:
    """``dialogue_text`` of (role, text) pairs, for a reader that has not built a Dialogue."""
    if scope not in ("dialogue", "supporter"):
        raise ValueError(f"unknown dedup scope {scope!r}")
    return "\n".join(text for role, text in turns if scope == "dialogue" or role == "supporter")


def dialogue_score(d: Dialogue) -> float | None:
    """Keeper score: sensibility + rationality, or None when the dialogue is not judged yet."""
    return d.scores.sensibility + d.scores.rationality if d.scores else None


class _DialogueTexts(Sequence[str]):
    """``dialogue_text`` of each dialogue, built when read: the batch never holds every raw text at
    once next to its normalized copy (about 230 MB per 100k dialogues)."""

    def __init__(self, dialogues: Sequence[Dialogue], scope: str) -> None:
        self._dialogues = dialogues
        self._scope = scope

    def __len__(self) -> int:
        return len(self._dialogues)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]  # ints only, no slices
        return dialogue_text(self._dialogues[i], self._scope)


def duplicate_rejection(d: Dialogue, dup: DuplicateOf) -> Rejection:
    """The dedup stage's rejection of `d`, naming the kept dialogue it duplicates; it carries the dialogue."""
    reason = "exact_duplicate" if dup.kind == "exact" else "near_duplicate"
    return Rejection(id=d.id, stage="dedup", reasons=[reason], seed=d.seed, dialogue=d,
                     detail=f"duplicates {dup.kept_id} (Jaccard {dup.jaccard:.2f})")


class DedupGate:
    """A run's kept set, shared by its dialogue threads.

    `check` before the judge, so no judge calls are spent on a duplicate; `admit` after it, which checks
    again and adds under one lock, so two near-duplicates judged at the same time are never both kept.
    With dedup switched off both always pass.
    """

    def __init__(self, config: DedupConfig) -> None:
        self.config = config
        self.index = DedupIndex(config)
        self._lock = threading.Lock()

    def add_kept(self, dialogues: Iterable[Dialogue], batch: int = 1024) -> None:
        """Dialogues kept earlier (a resumed run), streamed in batches: the vectorized signature path, without
        holding every dialogue at once."""
        stream = iter(dialogues)
        while chunk := list(itertools.islice(stream, batch)):
            with self._lock:
                self.index.add_many([d.id for d in chunk], [dialogue_text(d, self.config.scope) for d in chunk])

    def check(self, dialogue: Dialogue) -> Rejection | None:
        return self._duplicate(dialogue, admit=False)

    def admit(self, dialogue: Dialogue) -> Rejection | None:
        return self._duplicate(dialogue, admit=True)

    def _duplicate(self, dialogue: Dialogue, admit: bool) -> Rejection | None:
        if not self.config.enabled:
            return None
        text = dialogue_text(dialogue, self.config.scope)
        with self._lock:
            dup = self.index.query(text)
            if dup is None and admit:
                self.index.add(dialogue.id, text)
        return None if dup is None else duplicate_rejection(dialogue, dup)


def dedup_dialogues(dialogues: list[Dialogue], config: DedupConfig,
                    index: DedupIndex | None = None) -> tuple[list[Dialogue], list[Rejection]]:
    """Split dialogues into kept ones (input order) and dedup rejections that carry the dialogue; with
    `config.semantic`, the MinHash survivors then lose their paraphrases (filters.semantic_dedup)."""
    ids = [d.id for d in dialogues]
    texts = _DialogueTexts(dialogues, config.scope)
    dropped = find_duplicates(ids, texts, config, [dialogue_score(d) for d in dialogues], index)
    kept, rejections = [], []
    for d in dialogues:
        dup = dropped.get(d.id)
        if dup is None:
            kept.append(d)
        else:
            rejections.append(duplicate_rejection(d, dup))
    if config.semantic:
        from synth_empathy.filters.semantic_dedup import semantic_dedup_dialogues  # it imports this module

        kept, paraphrases = semantic_dedup_dialogues(kept, config.semantic_threshold, config.scope)
        rejections += paraphrases
    return kept, rejections
