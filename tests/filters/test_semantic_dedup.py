"""Semantic dedup: paraphrases MinHash misses, dropped only against a kept dialogue they are close to."""

import numpy as np
import pytest
from builders import make_dialogue

from synth_empathy.config import DedupConfig
from synth_empathy.filters import semantic_dedup
from synth_empathy.filters.dedup import dedup_dialogues
from synth_empathy.filters.semantic_dedup import semantic_duplicates

pytest.importorskip("wordllama")

ORIGINAL = ["I lost my job at the warehouse yesterday and I can't stop replaying the call.",
            "That sounds like a real shock. What has been the hardest part since the call?",
            "Honestly it's telling my sister, she lent me money last month for the deposit.",
            "So it's the weight of facing your sister after she helped you. That's a lot to carry."]
# Half the sentences said in other words: too few shared word trigrams for MinHash at 0.8.
PARAPHRASE = ["I lost my job at the warehouse yesterday and I can't stop replaying the call.",
              "What a shock that must be. Since the phone call, what has been hardest?",
              "Honestly it's telling my sister, she lent me money last month for the deposit.",
              "So facing your sister after she helped you weighs on you. That is a lot to carry."]
UNRELATED = ["My sister is getting married next month and nobody asked me to help plan it.",
             "Being left out of something so important to her must sting. How did you find out?",
             "She posted the date online before she even called me, which hurt more than anything.",
             "Learning it like a stranger would is painful. It makes sense that you feel hurt."]
OTHER = ["Our old dog died on Sunday and the house feels empty without him.",
         "Fourteen years is a whole life together. What do you miss most about him?",
         "His lead is still by the door and I can't bring myself to move it.",
         "Leaving it there for now is okay. Grief for a pet is real grief."]


def test_a_paraphrase_minhash_keeps_is_dropped_naming_its_original():
    dialogues = [make_dialogue(ORIGINAL, ident="a"), make_dialogue(PARAPHRASE, ident="b"),
                 make_dialogue(UNRELATED, ident="c"), make_dialogue(OTHER, ident="d")]
    kept, rejected = dedup_dialogues(dialogues, DedupConfig())
    assert len(kept) == 4  # MinHash alone: no duplicate
    kept, rejected = dedup_dialogues(dialogues, DedupConfig(semantic=True, semantic_threshold=0.85))
    assert [d.id for d in kept] == ["a", "c", "d"]
    assert [(r.id, r.reasons) for r in rejected] == [("b", ["semantic_duplicate"])]
    assert rejected[0].detail.startswith("paraphrases a (cosine 0.")


def test_only_verified_pairs_drop_a_chain_keeps_its_far_end(monkeypatch):
    # a~b and b~c at 0.9, a and c only 0.62 apart: b goes (it paraphrases a), c stays (nothing kept is close).
    angle = np.arccos(0.9)
    vectors = np.array([[1, 0], [np.cos(angle), np.sin(angle)], [np.cos(2 * angle), np.sin(2 * angle)]],
                       dtype=np.float32)
    monkeypatch.setattr(semantic_dedup, "embed", lambda texts: vectors)
    assert semantic_duplicates(["a", "b", "c"], ["x", "y", "z"], 0.85) == {"b": ("a", 0.9)}


def test_the_better_scored_of_two_paraphrases_is_kept(monkeypatch):
    monkeypatch.setattr(semantic_dedup, "embed", lambda texts: np.array([[1, 0], [1, 0]], dtype=np.float32))
    assert semantic_duplicates(["a", "b"], ["x", "y"], 0.9, scores=[5.0, 8.0]) == {"a": ("b", 1.0)}
