"""export --format dpo: TRL preference pairs from review edits and critique revisions, loadable with datasets."""

from __future__ import annotations

import json

import pytest
from builders import GOOD_TEXTS, make_dialogue
from review_corpus import label, make_review_corpus, with_drafts
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE, iter_jsonl
from synth_empathy.publish.dpo import critique_revision_pairs, human_edit_pairs, prompt_messages
from synth_empathy.publish.exports import DEFAULT_SYSTEM_PROMPT
from synth_empathy.review.labels import LabelStore
from synth_empathy.schema import Critique, Draft, TurnEdit

SYSTEM = "Be kind."


def test_the_prompt_ends_on_the_seeker_message_the_edited_turn_answers():
    d = make_dialogue(GOOD_TEXTS)
    assert prompt_messages(d.turns, 3, SYSTEM) == [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": GOOD_TEXTS[0]},
        {"role": "assistant", "content": GOOD_TEXTS[1]}, {"role": "user", "content": GOOD_TEXTS[2]}]


def test_a_human_edit_is_chosen_over_the_original_and_the_latest_label_wins():
    d = make_dialogue(GOOD_TEXTS)
    edit = TurnEdit(index=1, original=GOOD_TEXTS[1], text="That must have hit hard. What went through your mind?")
    stale = TurnEdit(index=3, original="a text the turn never had", text="x")
    old = label(d.id, edits=[TurnEdit(index=1, original=GOOD_TEXTS[1], text="first try")], time="t1")
    pairs, skipped = human_edit_pairs({d.id: d}, [old, label(d.id, edits=[edit, stale], time="t2")], SYSTEM)
    assert skipped == 1 and len(pairs) == 1
    pair = pairs[0]
    assert pair["chosen"] == [{"role": "assistant", "content": edit.text}]
    assert pair["rejected"] == [{"role": "assistant", "content": GOOD_TEXTS[1]}]
    assert pair["prompt"][-1] == {"role": "user", "content": GOOD_TEXTS[0]}
    assert (pair["source"], pair["reviewer"], pair["turn_index"]) == ("human_edit", "ana", 1)


def test_a_revised_turn_gives_its_critiqued_draft_as_rejected():
    d = with_drafts(make_dialogue(GOOD_TEXTS))
    unrevised = d.model_copy(update={"turns": [t.model_copy(update={"revised": False}) for t in d.turns]})
    pairs = critique_revision_pairs([d, unrevised], SYSTEM)
    assert [(p["turn_index"], p["source"]) for p in pairs] == [(1, "critique_revision"), (3, "critique_revision")]
    assert pairs[0]["rejected"][0]["content"] == f"Draft: {GOOD_TEXTS[1]}"
    assert pairs[0]["chosen"][0]["content"] == GOOD_TEXTS[1]


def test_export_dpo_writes_pairs_that_datasets_loads(tmp_path):
    datasets = pytest.importorskip("datasets")
    corpus = make_review_corpus(tmp_path / "run")
    kept = read_dialogues(corpus / KEPT_FILE)
    rejected = next(r["dialogue"] for r in iter_jsonl(corpus / REJECTED_FILE) if r.get("dialogue"))
    target = kept[5]
    store = LabelStore(corpus)
    store.append(label(target.id, edits=[TurnEdit(index=1, original=target.turns[1].text, text="I hear you.")]))
    store.append(label(rejected["id"], keep=False, reviewer="ben", edits=[TurnEdit(
        index=1, original=rejected["turns"][1]["text"], text="That sounds so hard.")]))
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    sources = [r["source"] for r in rows]
    revised_turns = sum(t.revised and bool(t.drafts) for d in kept for t in d.turns)
    assert sources.count("human_edit") == 2 and sources.count("critique_revision") == revised_turns > 0
    assert "preference pairs" in result.output
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert ds.num_rows == len(rows)
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected", "source"}
    first = ds[0]
    assert first["prompt"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert first["chosen"] == [{"role": "assistant", "content": "I hear you."}]
    assert first["rejected"][0]["content"] == target.turns[1].text


def test_export_dpo_without_edits_or_drafts_is_bad_input(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    lines = [d.model_copy(update={"turns": [t.model_copy(update={"revised": False, "drafts": []}) for t in d.turns]})
             for d in read_dialogues(corpus / KEPT_FILE)]
    (corpus / KEPT_FILE).write_text("".join(d.model_dump_json() + "\n" for d in lines))
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 2 and "no preference pairs" in result.output


def _critiqued(er: int, ip: int, ex: int) -> Critique:
    return Critique(er=er, ip=ip, ex=ex, failures=[] if er + ip + ex else ["linguistic_distancing"])


def test_the_margin_is_known_when_a_later_round_scored_the_revision():
    d = make_dialogue(GOOD_TEXTS)
    turns = list(d.turns)
    # Two rounds: the draft scored 1, its revision (the final text) scored 4 and passed.
    turns[1] = turns[1].model_copy(update={"revised": True, "drafts": [
        Draft(text="Okay.", critique=_critiqued(0, 1, 0)), Draft(text=GOOD_TEXTS[1], critique=_critiqued(2, 1, 1))]})
    # One round: the revision was never scored.
    turns[3] = turns[3].model_copy(update={"revised": True, "drafts": [
        Draft(text="Fine.", critique=_critiqued(0, 0, 0))]})
    pairs = critique_revision_pairs([d.model_copy(update={"turns": turns})], SYSTEM)
    assert [(p["turn_index"], p["margin"]) for p in pairs] == [(1, 3.0), (3, None)]


def test_min_margin_keeps_the_pairs_with_a_known_margin_at_least_that(tmp_path):
    datasets = pytest.importorskip("datasets")
    corpus = make_review_corpus(tmp_path / "run")
    kept = read_dialogues(corpus / KEPT_FILE)
    turns = list(kept[0].turns)
    for i in (1, 3):
        final = Draft(text=turns[i].text, critique=_critiqued(2, 2, i == 1))
        turns[i] = turns[i].model_copy(update={"drafts": [*turns[i].drafts, final]})
    kept[0] = kept[0].model_copy(update={"turns": turns})  # with_drafts' draft scores 1: margins 4 and 3
    (corpus / KEPT_FILE).write_text("".join(d.model_dump_json() + "\n" for d in kept))
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--min-margin", "3.5",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert ds["margin"] == [4.0] and ds[0]["turn_index"] == 1
    assert "1 with a critique margin" in result.output and "below --min-margin" in result.output
    everything = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--overwrite",
                                          "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert everything.exit_code == 0 and sorted(r["margin"] for r in rows if r["margin"] is not None) == [3.0, 4.0]
    assert any(r["margin"] is None for r in rows)


def test_min_margin_with_no_margin_known_is_bad_input(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--min-margin", "0",
                                      "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 2 and "critique_rounds >= 2" in result.output
