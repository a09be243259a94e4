"""Statistics gathered in one streamed pass equal those of the whole corpus read into memory, and the pieces
that make streaming possible (the reservoir sample, the streamed reader's one-outcome-per-seed rule) hold."""

from __future__ import annotations

import json
from collections import Counter

from corpora import make_corpus

from synth_empathy.corpus.read import read_corpus, stream_corpus
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE
from synth_empathy.publish.stats import _Reservoir, stats_for_corpus


def _double(path) -> None:
    """A folder written twice before the lock: every record twice, and a retried seed's rejection too."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines), encoding="utf-8")


def test_streamed_stats_equal_the_stats_of_the_corpus_read_whole(tmp_path):
    out = make_corpus(tmp_path / "c", n=260, rejected=30)  # over the self-similarity sample of 200
    _double(out / KEPT_FILE)
    kept = [json.loads(line) for line in (out / KEPT_FILE).read_text().splitlines()]
    with open(out / REJECTED_FILE, "a", encoding="utf-8") as f:  # a rejection of a seed that was kept later
        f.write(json.dumps({"id": kept[0]["id"], "stage": "generate", "reasons": ["generation_failed"]}) + "\n")
    whole = stats_for_corpus(read_corpus(out))
    streamed = stats_for_corpus(stream_corpus(out))
    assert streamed == whole
    assert streamed["counts"]["kept"] == 260 and streamed["counts"]["rejected"] == 30


def test_streamed_lenient_read_counts_unreadable_lines(tmp_path):
    out = make_corpus(tmp_path / "c", n=5, rejected=2)
    with open(out / KEPT_FILE, "a", encoding="utf-8") as f:
        f.write('{"id": "x", "turns": "not a dialogue"}\n{torn')
    stream = stream_corpus(out, strict=False)
    assert len(list(stream.dialogues())) == 5
    assert stream.unreadable == 1  # the torn line is not JSON: skipped without a count, as the whole read does
    assert stats_for_corpus(stream_corpus(out, strict=False)) == stats_for_corpus(read_corpus(out, strict=False))


def test_reservoir_is_seeded_in_stream_order_and_uniform():
    def sample(seed: int) -> list[str]:
        r = _Reservoir(10, seed)
        for i in range(100):
            r.add(f"{i:03d}")
        return r.sample()

    assert sample(1) == sample(1) and sample(1) != sample(2)
    assert sample(1) == sorted(sample(1))  # the sample keeps the stream's order
    picks = Counter(item for seed in range(2000) for item in sample(seed))
    # each of 100 items is picked with probability 1/10, i.e. ~200 times in 2000 samples; a biased reservoir
    # (say, one that keeps the first ten) puts some items far outside this band
    assert len(picks) == 100 and 120 < min(picks.values()) and max(picks.values()) < 290


def test_reservoir_keeps_everything_of_a_short_stream():
    r = _Reservoir(5, 0)
    for item in "abc":
        r.add(item)
    assert r.sample() == ["a", "b", "c"]
