"""Near-duplicate removal: signatures, LSH, exact verification, keepers and the persisted index."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH
from texts import spaced, substituted, words

from synth_empathy.config import DedupConfig
from synth_empathy.errors import UserError
from synth_empathy.filters import dedup
from synth_empathy.filters.dedup import (
    DedupIndex,
    DuplicateOf,
    dedup_dialogues,
    dialogue_text,
    find_duplicates,
    lsh_params,
    minhash_hashfunc,
    minhash_signatures,
    readable_shingles,
    shingle_hashes,
    sketch,
)
from synth_empathy.schema import Dialogue, Persona, Provenance, Scores, Seed, Situation, Turn
from synth_empathy.text import normalize_text

CONFIG = DedupConfig()  # threshold 0.8, 128 permutations, word trigrams


# ------------------------------------------------------------------ helpers


def string_jaccard(a: str, b: str, n: int = 3) -> float:
    """Independent of dedup.py: Jaccard of word n-gram tuples."""
    def grams(text: str) -> set[tuple[str, ...]]:
        w = re.sub(r"[^\w\s]", "", text.lower()).split()
        return set(zip(*(w[i:] for i in range(n)), strict=False))
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def make_dialogue(dialogue_id: str, text: str, score: float | None = None, supporter: str = "I hear you.") -> Dialogue:
    persona = Persona(id="p1", name="Ana", age_band="25-34", life_stage="early_career", occupation="nurse",
                      region="Lisbon", communication_style="direct", support_preference="listening",
                      emotional_baseline="calm", bio="A nurse.")
    situation = Situation(id="s1", text="Lost a job.", emotions=["sad"], problem_type="job_loss", domain="work")
    seed = Seed(id=f"seed-{dialogue_id}", index=0, persona=persona, situation=situation, emotion="sad",
                problem_type="job_loss", intensity=5)
    scores = None if score is None else Scores(sensibility=score / 2, rationality=score / 2, er=1, ip=1, ex=1)
    return Dialogue(
        id=dialogue_id, seed=seed, ending="natural", scores=scores,
        turns=[Turn(role="seeker", text=text),
               Turn(role="supporter", text=supporter, strategy="reflection_of_feelings")],
        provenance=Provenance(generator_model="m", config_fingerprint="f", created="2024-01-01", package_version="0"),
    )


# ------------------------------------------------------------------ text and signatures


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 42)])
def test_signatures_equal_datasketch_minhash(scheme: str, num_perm: int, seed: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "_BLOCK_SHINGLES", 50)  # many blocks, some texts longer than a block
    texts = [" ".join(words(s, n)) for s, n in [(1, 200), (2, 7), (3, 1), (4, 80)]]
    texts += ["", "Caf\u00e9 na\u00efve \u2014 r\u00e9sum\u00e9, ok?", "two words"]
    sk = sketch([normalize_text(t).encode() for t in texts], 3, num_perm, seed, scheme)
    for text, ours in zip(texts, sk.signatures, strict=True):
        theirs = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, hashfunc=minhash_hashfunc)
        theirs.update_batch([s.encode() for s in readable_shingles(text, 3)])
        assert ours.dtype == theirs.hashvalues.dtype
        np.testing.assert_array_equal(ours, theirs.hashvalues)


def test_signatures_interoperate_with_datasketch_lean_minhash() -> None:
    a, b = " ".join(words(5)), " ".join(substituted(words(5), spaced(5)))
    sk = sketch([normalize_text(t).encode() for t in (a, b)], 3, 128)
    lean = [LeanMinHash(seed=dedup.MINHASH_SEED, hashvalues=s, scheme=dedup.MINHASH_SCHEME) for s in sk.signatures]
    full = MinHash(seed=dedup.MINHASH_SEED, hashvalues=sk.signatures[1], scheme=dedup.MINHASH_SCHEME)
    plain = MinHash(num_perm=128, hashfunc=minhash_hashfunc)  # datasketch defaults: seed 1, affine32
    plain.update_batch([s.encode() for s in readable_shingles(a, 3)])
    assert lean[0].jaccard(lean[1]) == plain.jaccard(full) > 0.5
    assert LeanMinHash.deserialize(_serialized(lean[0])) == lean[0]


def _serialized(m: LeanMinHash) -> bytearray:
    buf = bytearray(m.bytesize())
    m.serialize(buf)
    return buf


def test_empty_document_gets_datasketch_empty_signature() -> None:
    sig = minhash_signatures(np.empty(0, dtype=np.uint64), np.zeros(3, dtype=np.int64), 16)
    np.testing.assert_array_equal(sig, np.tile(MinHash(num_perm=16).hashvalues, (2, 1)))


@pytest.mark.parametrize(("threshold", "num_perm", "weights"), [(0.8, 128, dedup.LSH_WEIGHTS), (0.6, 64, (0.5, 0.5))])
def test_lsh_params_match_datasketch_optimizer(threshold: float, num_perm: int, weights: tuple[float, float]) -> None:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    assert lsh_params(threshold, num_perm, weights) == (lsh.b, lsh.r)


# ------------------------------------------------------------------ find_duplicates


def test_exact_duplicates_found_by_normalized_hash() -> None:
    base = " ".join(words(1))
    copy = "  " + base.upper().replace(" ", " ,  ") + "!!"
    found = find_duplicates(["a", "b", "c"], [base, copy, " ".join(words(2))], CONFIG)
    assert found == {"b": DuplicateOf("a", "exact", 1.0)}


def test_near_duplicate_above_threshold_is_dropped() -> None:
    base = words(1)
    near = substituted(base, spaced(3))  # 9 of 198 trigrams replaced: Jaccard 189/207
    a, b = " ".join(base), " ".join(near)
    found = find_duplicates(["a", "b", "c"], [a, b, " ".join(words(2))], CONFIG)
    assert found == {"b": DuplicateOf("a", "near", pytest.approx(189 / 207))}
    assert found["b"].jaccard == pytest.approx(string_jaccard(a, b))


def test_below_threshold_is_kept() -> None:
    base = words(1)
    far = substituted(base, spaced(12))  # Jaccard 162/234 = 0.69
    assert string_jaccard(" ".join(base), " ".join(far)) < CONFIG.threshold
    assert find_duplicates(["a", "b"], [" ".join(base), " ".join(far)], CONFIG) == {}


def test_every_reported_pair_is_verified_at_or_above_threshold() -> None:
    rng = random.Random(7)
    texts, ids = [], []
    for k in range(60):
        base = words(100 + k)
        texts.append(" ".join(base))
        # Copies spanning the threshold: from 2 to 14 isolated substitutions.
        texts.append(" ".join(substituted(base, spaced(rng.randint(2, 14), start=rng.randint(3, 6)))))
    ids = [f"d{i:03d}" for i in range(len(texts))]
    found = find_duplicates(ids, texts, CONFIG)
    by_id = dict(zip(ids, texts, strict=True))
    assert found
    for dropped, dup in found.items():
        assert dup.jaccard == pytest.approx(string_jaccard(by_id[dropped], by_id[dup.kept_id]))
        assert dup.jaccard >= CONFIG.threshold and dup.kept_id not in found
    for i in range(0, len(texts), 2):  # and pairs well above the threshold are all found
        if string_jaccard(texts[i], texts[i + 1]) >= 0.85:
            assert ids[i + 1] in found or ids[i] in found


def test_keeper_is_highest_scored_then_smallest_id() -> None:
    text = " ".join(words(1))
    near = " ".join(substituted(words(1), spaced(2)))
    ids = ["b", "a", "c", "d"]
    assert find_duplicates(ids, [text, text, near, text], CONFIG, scores=[5.0, 5.0, 9.0, None]) == {
        "a": DuplicateOf("c", "near", pytest.approx(string_jaccard(text, near))),
        "b": DuplicateOf("c", "near", pytest.approx(string_jaccard(text, near))),
        "d": DuplicateOf("c", "near", pytest.approx(string_jaccard(text, near))),
    }
    # Without scores the smallest id wins.
    assert find_duplicates(ids, [text, text, near, text], CONFIG) == {
        "b": DuplicateOf("a", "exact", 1.0),
        "d": DuplicateOf("a", "exact", 1.0),
        "c": DuplicateOf("a", "near", pytest.approx(string_jaccard(text, near))),
    }


def test_chain_member_not_similar_to_the_keeper_is_kept() -> None:
    middle = words(3)
    left = substituted(middle, spaced(4, start=3))  # edits in the first half
    right = substituted(middle, spaced(4, start=120))  # edits in the second half
    a, b, c = (" ".join(w) for w in (left, middle, right))
    assert string_jaccard(a, b) >= 0.8 and string_jaccard(b, c) >= 0.8 and string_jaccard(a, c) < 0.8
    found = find_duplicates(["a", "b", "c"], [a, b, c], CONFIG, scores=[9.0, 5.0, 1.0])
    assert found == {"b": DuplicateOf("a", "near", pytest.approx(string_jaccard(a, b)))}


def test_exact_copy_of_a_dropped_near_duplicate_points_to_the_final_keeper() -> None:
    best = " ".join(words(4))
    near = " ".join(substituted(words(4), spaced(2)))
    found = find_duplicates(["x", "y", "y2"], [best, near, near.upper()], CONFIG, scores=[9.0, 1.0, 5.0])
    assert found == {"y2": DuplicateOf("x", "near", pytest.approx(string_jaccard(best, near))),
                     "y": DuplicateOf("x", "near", pytest.approx(string_jaccard(best, near)))}


def test_texts_without_words_are_never_duplicates() -> None:
    assert find_duplicates(["a", "b", "c"], ["", "?!", "..."], CONFIG) == {}


def test_disabled_config_drops_nothing() -> None:
    text = " ".join(words(1))
    assert find_duplicates(["a", "b"], [text, text], DedupConfig(enabled=False)) == {}


def test_ids_must_be_unique_and_match_texts() -> None:
    with pytest.raises(ValueError):
        find_duplicates(["a", "a"], ["x", "y"], CONFIG)
    with pytest.raises(ValueError):
        find_duplicates(["a"], ["x", "y"], CONFIG)


# ------------------------------------------------------------------ index


def test_index_roundtrip_checks_new_batch_against_old_corpus(tmp_path) -> None:
    old_texts = [" ".join(words(10 + k)) for k in range(5)]
    index = DedupIndex(CONFIG)
    assert find_duplicates([f"old{k}" for k in range(5)], old_texts, CONFIG, index=index) == {}
    path = tmp_path / "dedup_index.npz"
    index.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only, never pickle
        assert all(data[k].dtype != object for k in data.files)

    loaded = DedupIndex.load(path, CONFIG)
    assert loaded.ids == index.ids and len(loaded) == 5
    near_old = " ".join(substituted(words(12), spaced(3)))
    fresh = " ".join(words(99))
    batch = {"new-near": near_old, "new-exact": old_texts[0].upper(), "new-fresh": fresh, "new-fresh-copy": fresh}
    found = find_duplicates(list(batch), list(batch.values()), CONFIG, scores=[10.0, 10.0, 1.0, 0.0], index=loaded)
    assert found == {
        "new-near": DuplicateOf("old2", "near", pytest.approx(string_jaccard(old_texts[2], near_old))),
        "new-exact": DuplicateOf("old0", "exact", 1.0),
        "new-fresh-copy": DuplicateOf("new-fresh", "exact", 1.0),
    }
    assert loaded.ids == [f"old{k}" for k in range(5)] + ["new-fresh"]  # kept new items join the index
    later = find_duplicates(["later"], [fresh], CONFIG, index=loaded)
    assert later == {"later": DuplicateOf("new-fresh", "exact", 1.0)}


def test_index_refuses_a_config_it_was_not_built_with(tmp_path) -> None:
    path = tmp_path / "index.npz"
    DedupIndex(CONFIG).save(path)
    with pytest.raises(UserError):
        DedupIndex.load(path, DedupConfig(ngram=5))
    with pytest.raises(ValueError):
        find_duplicates(["a"], ["x"], DedupConfig(threshold=0.9), index=DedupIndex(CONFIG))
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(UserError):
        DedupIndex.load(tmp_path / "bad.npz")


def test_query_and_add_stream_one_text_at_a_time() -> None:
    index = DedupIndex(CONFIG)
    base = " ".join(words(20))
    assert index.query(base) is None
    index.add("first", base)
    assert index.query(base.upper() + "!") == DuplicateOf("first", "exact", 1.0)
    near = " ".join(substituted(words(20), spaced(3)))
    assert index.query(near) == DuplicateOf("first", "near", pytest.approx(string_jaccard(base, near)))
    assert index.query(" ".join(words(21))) is None
    with pytest.raises(ValueError):
        index.add("first", "again")


# ------------------------------------------------------------------ dialogues


def test_dialogue_text_scope_selects_turns() -> None:
    d = make_dialogue("d1", "I lost my job.", supporter="That sounds hard.")
    assert dialogue_text(d, "dialogue") == "I lost my job.\nThat sounds hard."
    assert dialogue_text(d, "supporter") == "That sounds hard."


def test_dedup_dialogues_rejections_carry_dialogue_and_detail() -> None:
    text = " ".join(words(30))
    near = " ".join(substituted(words(30), spaced(3)))
    dialogues = [make_dialogue("d3", near, score=8.0), make_dialogue("d1", text, score=6.0),
                 make_dialogue("d2", text.upper(), score=7.0), make_dialogue("d4", " ".join(words(31)))]
    kept, rejections = dedup_dialogues(dialogues, CONFIG)
    assert [d.id for d in kept] == ["d3", "d4"]
    assert [(r.id, r.stage, r.reasons) for r in rejections] == [
        ("d1", "dedup", ["near_duplicate"]), ("d2", "dedup", ["near_duplicate"])]
    assert rejections[0].dialogue is dialogues[1] and rejections[0].seed == dialogues[1].seed
    assert rejections[0].detail.startswith("duplicates d3 (Jaccard 0.")


def test_query_many_answers_what_query_answers_one_at_a_time() -> None:
    index = DedupIndex(CONFIG)
    base = [" ".join(words(k)) for k in range(10, 40)]
    index.add_many([f"b{k}" for k in range(30)], base)
    batch = [" ".join(substituted(words(12), spaced(3))), base[7].upper() + "!", " ".join(words(999)), "",
             " ".join(substituted(words(12), spaced(3)))]  # the same near copy twice: never matched to each other
    assert index.query_many(batch) == [index.query(t) for t in batch]
    assert [d and (d.kept_id, d.kind) for d in index.query_many(batch)] == [
        ("b2", "near"), ("b7", "exact"), None, None, ("b2", "near")]
    assert len(index) == 30  # a query adds nothing


def test_vectorized_shingle_hashes_equal_the_per_shingle_hashfunc() -> None:
    long_word = "x" * 70 + "y" * 80  # past the 64 positions of the word table
    text = f"a {long_word} b\u00e9 {long_word[::-1]} c d e " + " ".join(words(3, 30))
    ours = shingle_hashes(normalize_text(text).encode(), 3) & np.uint64(0xFFFFFFFF)
    theirs = [minhash_hashfunc(s.encode()) for s in readable_shingles(text, 3)]
    assert ours.tolist() == theirs
    assert len(set(theirs)) == len(theirs)  # no two distinct shingles of this text collide
