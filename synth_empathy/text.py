"""Words and their overlap: the one tokeniser, n-grams and the one Jaccard that every stage compares texts with.

Rules (repetition, language), role-play (stalls, what the seeker has said), catalog expansion (near-copy
nodes), dedup (shingles) and the corpus statistics (distinct-n, self-similarity) all read words the
same way, so a threshold set in one reads the same in another. Scripts written without spaces (Chinese,
Japanese) have no words to split on: each of their characters is a token, so word n-grams over them are the
character n-grams that dedup and the statistics compare such texts by.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+")
# str.translate is ~10x faster than the regex on pure-ASCII text; the table deletes exactly the
# ASCII characters the regex would, so both paths give the same result.
_ASCII_PUNCT = str.maketrans({c: None for c in map(chr, range(128)) if _PUNCT.fullmatch(c)})
# Han ideographs, kana and CJK compatibility ideographs: the characters written without spaces between words.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han ideographs (CJK unified, extension A, compatibility)
KANA = "\u3040-\u30ff"  # hiragana and katakana
_UNSPACED = re.compile(f"[{KANA}{HAN}]")

T = TypeVar("T")


def normalize_text(text: str) -> str:
    """Lowercase, delete punctuation, collapse whitespace to single spaces."""
    text = text.lower()
    if text.isascii():
        return " ".join(text.translate(_ASCII_PUNCT).split())
    return " ".join(_UNSPACED.sub(r" \g<0> ", _PUNCT.sub("", text)).split())


# The same normalization on ASCII bytes in one C pass: lowercase, and the control characters that str.split
# treats as spaces (but bytes.split does not) mapped to a space, with the same punctuation deleted.
_ASCII_TABLE = bytes(c + 32 if 65 <= c <= 90 else 32 if 0x1C <= c <= 0x1F else c for c in range(256))
_ASCII_PUNCT_BYTES = bytes(c for c in range(128) if _PUNCT.fullmatch(chr(c)))


def normalized_bytes(text: str) -> bytes:
    """``normalize_text(text).encode()``, about twice as fast on ASCII text (what dedup hashes)."""
    if text.isascii():
        return b" ".join(text.encode().translate(_ASCII_TABLE, _ASCII_PUNCT_BYTES).split())
    return normalize_text(text).encode()


def words(text: str) -> list[str]:
    """The words of a text, normalized: "I can't sleep." -> ["i", "cant", "sleep"]."""
    return normalize_text(text).split()


def word_count(text: str) -> int:
    """Words as written (whitespace-separated, punctuation included), each character of an unspaced script one
    word: the length that the rules' limits and the statistics' words per turn count."""
    if text.isascii():
        return len(text.split())
    return sum(_written_words(token) for token in text.split())


def _written_words(token: str) -> int:
    if not _UNSPACED.search(token):
        return 1
    # Split off from an ideograph, its punctuation (，。) stands alone, and is no word.
    return sum(not _PUNCT.fullmatch(part) for part in _UNSPACED.sub(r" \g<0> ", token).split())


def ngrams(tokens: Sequence[T], n: int) -> Iterator[tuple[T, ...]]:
    """Every run of `n` consecutive tokens, in order (none when there are fewer than `n`)."""
    return zip(*(tokens[i:] for i in range(n)), strict=False)


def shingles(tokens: Sequence[T], n: int) -> Iterator[tuple[T, ...]]:
    """The n-grams a text is compared by; a text shorter than one n-gram is one shingle (itself), so it
    can still match its copies."""
    if 0 < len(tokens) < n:
        return iter([tuple(tokens)])
    return ngrams(tokens, n)


def jaccard(a, b) -> float:
    """|A & B| / |A | B| of two sets, or of two sorted numpy arrays of distinct values (the dedup stage's
    shingle hashes, intersected without building sets); 0.0 for two empty ones."""
    inter = np.intersect1d(a, b, assume_unique=True).size if isinstance(a, np.ndarray) else len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0
