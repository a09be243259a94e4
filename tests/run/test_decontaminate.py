"""Benchmark contamination: long shared n-grams and near duplicates against benchmark files, reported, dropped only
into a new folder, recorded in the manifest and card."""

import hashlib
import json
from pathlib import Path

import pytest
from conftest import DATA
from corpora import make_corpus
from texts import spaced, substituted, words
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import DedupConfig
from synth_empathy.filters.contamination import find_contamination

runner = CliRunner()


def _text(seed: int, n: int = 120) -> str:
    return " ".join(words(seed, n))


def test_a_shared_13_gram_flags_and_a_12_gram_does_not():
    corpus = [_text(1), _text(2), _text(3)]
    shared13 = words(1, 120)[40:53]
    shared12 = words(2, 120)[40:52]
    bench = [" ".join(words(90, 50) + shared13 + words(91, 50)), " ".join(words(92, 50) + shared12 + words(93, 50))]
    found = find_contamination(corpus, ["b13", "b12"], bench, DedupConfig())
    assert [(o.ngram_hits, o.ngram_item, o.near_item) for o in found] == [(1, "b13", None), (0, None, None),
                                                                           (0, None, None)]
    assert find_contamination(corpus, ["b13", "b12"], bench, DedupConfig(), ngram=12)[1].ngram_item == "b12"


def test_a_near_copy_is_flagged_through_the_dedup_index_even_without_long_ngrams():
    base = words(5, 200)
    near = " ".join(substituted(base, spaced(7, start=10, step=30)))  # Jaccard 0.81, no 40 words in a row left
    found = find_contamination([near, _text(6)], ["bench-a"], [" ".join(base).upper()], DedupConfig(), ngram=40)
    assert found[0].ngram_hits == 0 and found[0].near_item == "bench-a" and found[0].near_jaccard >= 0.8
    assert found[0].reasons == ["benchmark_near_duplicate"] and found[1].reasons == []


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


@pytest.fixture
def corpus_and_benchmark(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n=12)
    first = json.loads((corpus / "dialogues.jsonl").read_text().splitlines()[0])
    bench = tmp_path / "bench.jsonl"
    messages = [{"role": "user" if t["role"] == "seeker" else "assistant", "content": t["text"]}
                for t in first["turns"]]
    bench.write_text(json.dumps({"id": "eval-1", "messages": messages}) + "\n")
    return corpus, bench, first["id"]


def test_report_only_writes_nothing_and_drop_needs_a_new_folder(corpus_and_benchmark):
    corpus, bench, copied = corpus_and_benchmark
    before = _digest(corpus)
    result = runner.invoke(app, ["decontaminate", str(corpus), "--against", str(bench), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert copied in {f["id"] for f in report["flagged"]}
    assert report["checked"]["against"][0] == {"path": str(bench), "format": "chat", "dialogues": 1, "bad_rows": 0}
    refused = runner.invoke(app, ["decontaminate", str(corpus), "--against", str(bench), "--drop"])
    assert refused.exit_code == 2 and "--out" in refused.output
    inside = runner.invoke(app, ["decontaminate", str(corpus), "--against", str(bench), "--drop", "--out",
                                 str(corpus / "clean")])
    assert inside.exit_code == 2
    assert _digest(corpus) == before


def test_drop_writes_a_new_corpus_whose_manifest_and_card_record_the_check(corpus_and_benchmark, tmp_path):
    corpus, bench, copied = corpus_and_benchmark
    ed = DATA / "import" / "ed_sample.csv"
    out = tmp_path / "clean"
    result = runner.invoke(app, ["decontaminate", str(corpus), "--against", str(bench), "--against", str(ed), "--drop",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "decontamination.json").read_text())
    flagged = {f["id"] for f in report["flagged"]}
    kept = [json.loads(line)["id"] for line in (out / "dialogues.jsonl").read_text().splitlines()]
    original = [json.loads(line)["id"] for line in (corpus / "dialogues.jsonl").read_text().splitlines()]
    assert copied in flagged and not flagged & set(kept) and sorted(kept + sorted(flagged)) == sorted(original)
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    ours = [r for r in rejected if r["stage"] == "decontaminate"]
    assert {r["id"] for r in ours} == flagged and "eval-1" in ours[0]["detail"] + ours[-1]["detail"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["format"] for f in manifest["decontamination"]["checked"]["against"]] == ["chat", "ed_csv"]
    assert manifest["decontamination"]["found"]["dropped"] == len(flagged)
    assert manifest["counts"]["kept"] == len(kept)
    card = (out / "README.md").read_text()
    assert "### Benchmark contamination" in card and "ed_sample.csv" in card
