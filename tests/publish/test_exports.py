"""Exports (openai, sharegpt, hf), family-safe splits, selections, the data card and `stats`, on corpora built by
`corpora.make_corpus`."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from corpora import make_corpus, make_dialogue, sibling

from synth_empathy.config import RunConfig
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import CARD_FILE, KEPT_FILE, MANIFEST_FILE
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_seeds
from synth_empathy.publish.card import write_card
from synth_empathy.publish.exports import (
    DEFAULT_SYSTEM_PROMPT,
    build_selection,
    export_corpus,
    family,
    parse_split,
    split_by_family,
    to_openai,
)
from synth_empathy.publish.stats import (
    distinct_n,
    format_stats,
    histogram,
    self_similarity,
    stats_for_dir,
)
from synth_empathy.schema import Dialogue, Manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """60 kept dialogues (some families of two), 16 rejections; read-only for the tests that share it."""
    return make_corpus(tmp_path_factory.mktemp("corpus") / "run", n=60, rejected=16)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _kept(corpus_dir: Path) -> list[Dialogue]:
    return read_dialogues(corpus_dir / KEPT_FILE)


def _check_openai_line(record: dict) -> None:
    """OpenAI's chat fine-tuning line, field by field."""
    assert set(record) == {"messages"}
    messages = record["messages"]
    assert isinstance(messages, list) and messages
    for m in messages:
        assert m["role"] in {"system", "user", "assistant"}
        assert isinstance(m["content"], str) and m["content"].strip()
        assert set(m) <= ({"role", "content", "weight"} if m["role"] == "assistant" else {"role", "content"})
        if "weight" in m:
            assert m["weight"] in (0, 1) and isinstance(m["weight"], int)
    assert any(m["role"] == "assistant" for m in messages)
    assert messages[0]["role"] == "system"
    assert messages[-1]["role"] == "assistant"  # a trailing user message would teach nothing


# ---------------------------------------------------------------- openai


@pytest.mark.parametrize("targets", ["all", "last"])
def test_openai_export_lines_follow_the_chat_fine_tuning_format(corpus, tmp_path, targets):
    out = tmp_path / "train.jsonl"
    result = export_corpus(corpus, "openai", out, targets=targets)
    lines = _lines(out)
    assert len(lines) == result.dialogues == 60
    for record in lines:
        _check_openai_line(record)
        weights = [m.get("weight") for m in record["messages"] if m["role"] == "assistant"]
        if targets == "all":
            assert weights == [None] * len(weights)  # no weights: OpenAI trains on every assistant message
        else:
            assert weights == [0] * (len(weights) - 1) + [1]
    assert lines[0]["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT


def test_openai_maps_supporter_to_assistant_and_drops_a_closing_seeker_turn(corpus):
    d = next(d for d in _kept(corpus) if d.ending == "seeker_done")
    assert d.turns[-1].role == "seeker"
    messages = to_openai(d, system_prompt="Be kind.")["messages"]
    assert messages[0] == {"role": "system", "content": "Be kind."}
    spoken = [(t.role, t.text) for t in d.turns[:-1]]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user" if role == "seeker" else "assistant", text) for role, text in spoken]


# ---------------------------------------------------------------- sharegpt


def test_sharegpt_export_loads_in_datasets_with_system_human_gpt(corpus, tmp_path):
    import datasets

    out = tmp_path / "sharegpt.jsonl"
    export_corpus(corpus, "sharegpt", out)
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(ds) == 60
    kept = {d.id: d for d in _kept(corpus)}
    for row in ds:
        sources = [turn["from"] for turn in row["conversations"]]
        assert sources[0] == "system" and set(sources[1:]) <= {"human", "gpt"}
        assert sources[1:] == ["human", "gpt"] * ((len(sources) - 1) // 2)  # alternating, ends on gpt
        assert all(isinstance(turn["value"], str) and turn["value"] for turn in row["conversations"])
        assert row["conversations"][1]["value"] == kept[row["id"]].turns[0].text


def test_sharegpt_json_suffix_writes_one_json_array(corpus, tmp_path):
    out = tmp_path / "sharegpt.json"
    export_corpus(corpus, "sharegpt", out, selection=build_selection(emotions="afraid,annoyed"))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(data, list) and data
    assert all(set(r) == {"id", "conversations"} for r in data)


# ---------------------------------------------------------------- hf


def test_hf_export_loads_from_disk_and_parquet_with_family_safe_splits(corpus, tmp_path):
    import datasets

    out = tmp_path / "hf"
    result = export_corpus(corpus, "hf", out, seed=3)
    dd = datasets.load_from_disk(str(out))
    assert set(dd) == {"train", "validation", "test"}
    assert sum(len(ds) for ds in dd.values()) == 60
    assert len(dd["train"]) > len(dd["validation"]) > 0 and len(dd["test"]) > 0
    assert {k: len(v) for k, v in dd.items()} == result.splits
    families = {name: set(ds["family"]) for name, ds in dd.items()}
    assert not families["train"] & families["validation"]
    assert not families["train"] & families["test"]
    assert not families["validation"] & families["test"]
    row = dd["train"][0]
    assert row["messages"][0]["role"] == "system" and row["messages"][-1]["role"] == "assistant"
    assert Dialogue.model_validate_json(row["record"]).id == row["id"]  # lossless
    parquet = datasets.load_dataset("parquet", data_files={s: str(out / "data" / f"{s}-00000-of-00001.parquet")
                                                           for s in dd})
    assert {k: len(v) for k, v in parquet.items()} == result.splits
    card = (out / CARD_FILE).read_text(encoding="utf-8")
    assert card.startswith("---\n") and "configs:" in card and "path: data/train-*" in card
    assert "## This export" in card and "seed family" in card


def test_split_never_puts_one_family_in_two_splits():
    catalog = load_catalog(RunConfig().personas_dir, RunConfig().scenarios_dir)
    rng = random.Random(7)
    seeds = plan_seeds(catalog, 120, seed=1)
    # Big families too: up to five personas in the same situation.
    for i in range(1, len(seeds)):
        if rng.random() < 0.5:
            seeds[i] = sibling(seeds[rng.randrange(max(0, i - 5), i)], seeds[i].index, catalog.personas)
    dialogues = [make_dialogue(s, rng, 2, "2025-03-01T00:00:00+00:00", None) for s in seeds]
    for seed in range(10):
        for ratios in [(0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (0.9, 0.1, 0.0)]:
            splits = split_by_family(dialogues, ratios, seed)
            assert sum(len(v) for v in splits.values()) == len(dialogues)
            owner: dict[str, str] = {}
            for name, ds in splits.items():
                for d in ds:
                    assert owner.setdefault(family(d), name) == name
            if ratios[2] == 0:
                assert not splits["test"]
            # Whole families cannot hit a ratio exactly, but they get close.
            assert abs(len(splits["train"]) / len(dialogues) - ratios[0]) < 0.08
    assert split_by_family(dialogues, (0.8, 0.1, 0.1), 5) == split_by_family(dialogues, (0.8, 0.1, 0.1), 5)
    assert split_by_family(dialogues, (0.8, 0.1, 0.1), 5) != split_by_family(dialogues, (0.8, 0.1, 0.1), 6)


def test_parse_split_reads_fractions_and_percentages():
    assert parse_split(None) == (0.8, 0.1, 0.1)
    assert parse_split("0.7,0.15,0.15") == (0.7, 0.15, 0.15)
    assert parse_split("80,10,10") == (0.8, 0.1, 0.1)


def test_hf_overwrite_replaces_an_earlier_export_only(corpus, tmp_path):
    out = tmp_path / "hf"
    export_corpus(corpus, "hf", out)
    with pytest.raises(UserError, match="not empty"):
        export_corpus(corpus, "hf", out)
    result = export_corpus(corpus, "hf", out, overwrite=True, selection=build_selection(min_sensibility=8))
    assert sum(result.splits.values()) == result.dialogues < 60
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="holds no earlier hf export"):
        export_corpus(corpus, "hf", other, overwrite=True)
    assert (other / "mine.txt").read_text() == "keep me"


def test_push_without_a_token_fails_in_one_sentence_before_writing(corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "hf"
    with pytest.raises(UserError) as err:
        export_corpus(corpus, "hf", out, push="someone/empathy-dialogues")
    message = str(err.value)
    assert "HF_TOKEN" in message and "\n" not in message
    assert not out.exists()


# ---------------------------------------------------------------- filters


def test_filters_keep_only_matching_dialogues(corpus, tmp_path):
    kept = _kept(corpus)
    out = tmp_path / "f.jsonl"

    selection = build_selection(min_sensibility=8, min_rationality=7)
    result = export_corpus(corpus, "sharegpt", out, selection=selection)
    ids = {r["id"] for r in _lines(out)}
    assert ids == {d.id for d in kept if d.scores.sensibility >= 8 and d.scores.rationality >= 7}
    assert result.filtered_out == 60 - len(ids) > 0

    emotion = kept[0].seed.emotion
    export_corpus(corpus, "sharegpt", out, selection=build_selection(emotions=[emotion.upper()]), overwrite=True)
    assert {r["id"] for r in _lines(out)} == {d.id for d in kept if d.seed.emotion == emotion}

    problem = kept[0].seed.problem_type
    export_corpus(corpus, "sharegpt", out, selection=build_selection(problem_types=[problem]), overwrite=True)
    assert {r["id"] for r in _lines(out)} == {d.id for d in kept if d.seed.problem_type == problem}

    export_corpus(corpus, "sharegpt", out, overwrite=True,
                  selection=build_selection(strategies=["Reflection of feelings", "affirmation"]))
    assert {r["id"] for r in _lines(out)} == {
        d.id for d in kept if {"reflection_of_feelings", "affirmation"} & {t.strategy for t in d.turns}}


def test_a_score_minimum_drops_unscored_dialogues(tmp_path):
    corpus_dir = make_corpus(tmp_path / "run", n=6, rejected=0)
    records = _lines(corpus_dir / KEPT_FILE)
    records[0].pop("scores")
    (corpus_dir / KEPT_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    result = export_corpus(corpus_dir, "openai", tmp_path / "o.jsonl", selection=build_selection(min_rationality=0))
    assert result.dialogues == 5 and result.filtered_out == 1


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("case, fragment", [
    ("missing_dir", "does not exist"),
    ("no_dialogues", "holds no dialogues.jsonl"),
    ("unknown_format", "unknown export format 'csv'"),
    ("bad_emotion", "--emotion 'hapy' is not one of the 32 emotion labels"),
    ("bad_strategy", "--strategy 'hugging' is not an ESConv strategy"),
    ("score_out_of_range", "--min-sensibility must be between 0 and 10"),
    ("unknown_problem_type", "--problem-type 'space_travel' is not a problem type"),
    ("nothing_passes", "passes the filters"),
    ("bad_split", "--split '0.5,0.1' must be three shares"),
    ("split_sums_wrong", "must add up to 1"),
    ("targets_for_sharegpt", "--targets applies to the openai and prompt-completion formats only"),
    ("push_for_openai", "--push applies to the hf format only"),
    ("bad_repo_id", "is not a Hugging Face repository id"),
    ("out_exists", "already exists"),
    ("out_is_corpus", "never replaces its input"),
    ("not_a_dialogue", "record 1 is not a synth-empathy dialogue"),
])
def test_bad_input_is_one_clear_sentence(corpus, tmp_path, monkeypatch, case, fragment):
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # so the repo id is what fails, never the network
    out = tmp_path / "out.jsonl"
    calls = {
        "missing_dir": lambda: export_corpus(tmp_path / "nope", "openai", out),
        "no_dialogues": lambda: export_corpus(tmp_path, "openai", out),
        "unknown_format": lambda: export_corpus(corpus, "csv", out),
        "bad_emotion": lambda: build_selection(emotions=["hapy"]),
        "bad_strategy": lambda: build_selection(strategies="hugging"),
        "score_out_of_range": lambda: build_selection(min_sensibility=11),
        "unknown_problem_type": lambda: export_corpus(corpus, "openai", out,
                                                      selection=build_selection(problem_types=["space_travel"])),
        "nothing_passes": lambda: export_corpus(corpus, "openai", out, selection=build_selection(min_sensibility=10,
                                                                                            min_rationality=10)),
        "bad_split": lambda: export_corpus(corpus, "hf", tmp_path / "hf", split="0.5,0.1"),
        "split_sums_wrong": lambda: export_corpus(corpus, "hf", tmp_path / "hf", split=(0.5, 0.1, 0.1)),
        "targets_for_sharegpt": lambda: export_corpus(corpus, "sharegpt", out, targets="last"),
        "push_for_openai": lambda: export_corpus(corpus, "openai", out, push="me/data"),
        "bad_repo_id": lambda: export_corpus(corpus, "hf", tmp_path / "hf", push="not a repo!"),
        "out_exists": lambda: (out.write_text("x"), export_corpus(corpus, "openai", out)),
        "out_is_corpus": lambda: export_corpus(corpus, "openai", corpus / KEPT_FILE, overwrite=True),
        "not_a_dialogue": lambda: (
            (tmp_path / "bad").mkdir(), (tmp_path / "bad" / KEPT_FILE).write_text('{"id": "x"}\n'),
            export_corpus(tmp_path / "bad", "openai", out)),
    }
    with pytest.raises(UserError) as err:
        calls[case]()
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert not (tmp_path / "hf").exists()


# ---------------------------------------------------------------- card and stats


def test_card_holds_provenance_limits_licence_and_statistics(corpus, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(corpus, run)
    write_card(run, read_manifest(run))
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    for section in ("## Intended use and known limits", "Not clinical advice", "## Provenance", "### Counts",
                    "### Rejections by stage and reason", "### Judge scores", "### Coverage of the scenario space",
                    "### Emotions", "### Problem types", "### Supporter strategies", "### Personas",
                    "### Turns and lengths", "### Diversity", "### Tokens and cost"):
        assert section in card, section
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    for fact in ("openai:gpt-test", "openai:judge-test", "`ffffffffffffffff`", "dspy 3.4.1", "| 76 | 60 | 16 | 78.9% |",
                 "| judge | 4 | low_sensibility (4), low_rationality (4) |", "plausible (emotion x problem type) cells",
                 "distinct-1", "self-similarity", "| **total** | 260 | 0 | 150,000 | 16,000 | n/a |",
                 "2025-03-01T00:00:00+00:00"):
        assert fact in card, fact


def test_card_says_whether_the_corpus_leaves_out_the_situations_eval_holds_out(corpus, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(corpus, run)
    manifest = read_manifest(run)
    write_card(run, manifest)
    assert "the ones `synth-empathy eval` holds out included" in (run / CARD_FILE).read_text(encoding="utf-8")
    manifest.config["sampler"] = {**manifest.config.get("sampler", {}), "split": "train"}
    write_card(run, manifest)
    assert "| scenario split | train: the situations" in (run / CARD_FILE).read_text(encoding="utf-8")


def test_card_skips_coverage_with_a_note_when_the_catalog_does_not_load(corpus, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(corpus, run)
    manifest = read_manifest(run)
    manifest.config["personas_dir"] = str(tmp_path / "gone")
    write_card(run, manifest)
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    assert "_Coverage of the scenario space was not computed: the catalog named in the manifest did not load" in card
    assert "### Emotions" in card


def test_card_never_breaks_on_a_torn_line(corpus, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(corpus, run)
    with open(run / KEPT_FILE, "a", encoding="utf-8") as f:
        f.write('{"id": "torn", "seed": {')
    write_card(run, read_manifest(run))
    assert "60 multi-turn" in (run / CARD_FILE).read_text(encoding="utf-8")


def test_stats_dict_is_json_and_format_stats_prints_the_essentials(corpus):
    stats = stats_for_dir(corpus)
    assert json.loads(json.dumps(stats)) == stats
    assert stats["counts"] == {"planned": 76, "kept": 60, "rejected": 16, "finished": 76, "keep_rate": 60 / 76}
    assert stats["rejections"]["by_stage"] == {"generate": 4, "rules": 4, "dedup": 4, "judge": 4}
    assert sum(stats["scores"]["sensibility"]["kept"]["histogram"]) == 60
    assert sum(stats["scores"]["sensibility"]["rejected"]["histogram"]) == 4
    assert stats["coverage"]["cells_covered"] > 0 and 0 < stats["coverage"]["cell_coverage"] < 1
    assert stats["usage"]["total"]["tokens"] == 166_000 and stats["usage"]["cost_usd"] is None
    text = format_stats(stats)
    for fragment in ("60 kept, 16 rejected of 76 planned (keep rate 78.9%)", "rejected at judge",
                     "sensibility", "rationality", " 8 | ███", "plausible emotion x problem type cells",
                     "tokens        166,000", "cost          not recorded"):
        assert fragment in text, fragment


def test_stats_without_manifest_skip_coverage_and_tokens(corpus, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(corpus / KEPT_FILE, bare / KEPT_FILE)
    stats = stats_for_dir(bare)
    assert "no manifest.json" in stats["coverage"]["skipped"]
    text = format_stats(stats)
    assert "coverage      skipped" in text and "tokens        not recorded" in text


def test_cost_is_shown_when_the_manifest_records_it(corpus, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(corpus, run)
    data = json.loads((run / MANIFEST_FILE).read_text())
    data["cost_usd"] = 1.25
    data["usage"]["judge"]["cost_usd"] = 0.25
    (run / MANIFEST_FILE).write_text(json.dumps(data))
    manifest = Manifest.model_validate(data)
    if getattr(manifest, "cost_usd", None) is None:
        pytest.skip("this schema.Manifest has no cost_usd field yet")
    stats = stats_for_dir(run)
    assert stats["usage"]["cost_usd"] == 1.25 and stats["usage"]["stages"]["judge"]["cost_usd"] == 0.25
    assert "cost          $1.2500" in format_stats(stats)


def test_distinct_n_self_similarity_and_histogram_bins():
    assert distinct_n(["a b a b", "a b c"], 1) == round(3 / 7, 4)
    assert distinct_n(["a b a b", "a b c"], 2) == round(3 / 5, 4)
    assert distinct_n([], 1) is None
    same = self_similarity(["one two three four"] * 3)
    assert same["mean_jaccard"] == 1.0 and same["pairs"] == 3
    apart = self_similarity(["one two three four", "five six seven eight"])
    assert apart["mean_jaccard"] == 0.0
    assert self_similarity([f"text number {i} here" for i in range(500)], sample_size=50)["sample"] == 50
    assert histogram([0, 6.49, 6.5, 7.5, 10]) == [1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1]


def test_hf_without_the_datasets_package_says_what_to_install(corpus, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(UserError, match=r"pip install 'synth-empathy\[hf\]'"):
        export_corpus(corpus, "hf", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_export_result_summary_is_one_line(corpus, tmp_path):
    result = export_corpus(corpus, "hf", tmp_path / "hf", selection=build_selection(min_sensibility=7))
    line = result.summary()
    assert "\n" not in line and line.startswith(f"exported {result.dialogues} dialogues to ")
    assert "filtered out" in line and "splits train" in line and "families" in line
