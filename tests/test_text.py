"""The one tokeniser, n-grams and Jaccard every stage compares texts with."""

from __future__ import annotations

import re

import numpy as np

from synth_empathy.filters.dedup import readable_shingles
from synth_empathy.text import jaccard, ngrams, normalize_text, normalized_bytes, shingles, words


def test_normalization_lowercases_deletes_punctuation_and_collapses_whitespace() -> None:
    assert normalize_text("  Hello,\n\tWORLD!!  I'm   fine. ") == "hello world im fine"
    assert normalize_text("Don\u2019t  panic\u2026 caf\u00e9!") == "dont panic caf\u00e9"


def test_ascii_fast_path_deletes_exactly_what_the_regex_deletes() -> None:
    every_ascii = "".join(map(chr, range(128)))
    # The non-ASCII path (the regex) on the same characters, plus one non-ASCII letter to force it.
    assert normalize_text(every_ascii) + " \u00e9" == normalize_text(every_ascii + " \u00e9")
    assert normalize_text(every_ascii) == " ".join(re.sub(r"[^\w\s]+", "", every_ascii.lower()).split())


def test_normalized_bytes_are_the_normalized_text_encoded() -> None:
    every_ascii = "".join(map(chr, range(128)))
    texts = [every_ascii, every_ascii[::-1], "A\x1cB\x1fC  d", "Don't PANIC!\r\n", "", "   ", "caf\u00e9 OK!",
             "x" + "\x0b\x0c".join("AbC")]
    for text in texts:
        assert normalized_bytes(text) == normalize_text(text).encode()


def test_words_are_the_normalized_tokens() -> None:
    assert words("I can't sleep, 2 nights now.") == ["i", "cant", "sleep", "2", "nights", "now"]
    assert words("?!") == []


def test_shingles_are_word_ngrams_and_a_short_text_is_one_shingle() -> None:
    assert readable_shingles("The cat, the HAT!", 3) == ["the cat the", "cat the hat"]
    assert readable_shingles("Hi there", 3) == ["hi there"]
    assert readable_shingles("?!", 3) == []
    assert list(ngrams(["hi", "there"], 3)) == [] and list(shingles(["hi", "there"], 3)) == [("hi", "there")]


def test_one_jaccard_for_sets_and_sorted_hash_arrays() -> None:
    a, b = {1, 2, 3, 4}, {3, 4, 5}
    assert jaccard(a, b) == 2 / 5
    assert jaccard(np.array(sorted(a), dtype=np.uint64), np.array(sorted(b), dtype=np.uint64)) == 2 / 5
    assert jaccard(set(), set()) == 0.0 and jaccard(np.array([]), np.array([])) == 0.0
