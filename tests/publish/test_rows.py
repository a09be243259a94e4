"""publish.rows: the one chat form of the exports and the API, and TRL prompt-completion rows per supporter reply."""

from __future__ import annotations

import json

import pytest
from builders import GOOD_TEXTS, make_dialogue
from corpora import make_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import KEPT_FILE
from synth_empathy.publish.rows import DEFAULT_SYSTEM_PROMPT, hf_row, prompt_completion_rows, to_messages
from synth_empathy.schema import Turn

SYSTEM = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}


def test_a_closing_seeker_turn_is_dropped_and_the_system_message_leads():
    d = make_dialogue([*GOOD_TEXTS, "Thanks, I'll go and rest now."])
    messages = to_messages(d)
    assert messages[0] == SYSTEM and messages[-1] == {"role": "assistant", "content": GOOD_TEXTS[3]}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]


def test_one_row_per_supporter_reply_whose_prompt_is_the_history_before_it():
    d = make_dialogue([*GOOD_TEXTS, "Thanks, I'll go and rest now."])
    rows = prompt_completion_rows(d)
    assert [(r["id"], r["turn_index"]) for r in rows] == [("d1:1", 1), ("d1:3", 3)]
    assert rows[0]["prompt"] == [SYSTEM, {"role": "user", "content": GOOD_TEXTS[0]}]
    assert rows[1]["completion"] == [{"role": "assistant", "content": GOOD_TEXTS[3]}]
    # The last row is the whole conversation: the same chat form as every other export.
    assert rows[-1]["prompt"] + rows[-1]["completion"] == to_messages(d) == hf_row(d)["messages"]
    assert prompt_completion_rows(d, targets="last") == rows[-1:]


def test_consecutive_supporter_turns_are_one_completion():
    d = make_dialogue(GOOD_TEXTS[:2])
    d = d.model_copy(update={"turns": [*d.turns, Turn(role="supporter", text="Take your time.", strategy="other")]})
    (row,) = prompt_completion_rows(d, system_prompt=None)
    assert row["prompt"] == [{"role": "user", "content": GOOD_TEXTS[0]}] and row["turn_index"] == 2
    assert row["completion"][0]["content"] == f"{GOOD_TEXTS[1]}\n\nTake your time."


def test_a_reply_with_nothing_before_it_has_no_row():
    d = make_dialogue(GOOD_TEXTS[:2])
    d = d.model_copy(update={"turns": [Turn(role="supporter", text="Hi, I'm here.", strategy="other"), *d.turns]})
    assert [r["turn_index"] for r in prompt_completion_rows(d, system_prompt=None)] == [2]
    assert [r["turn_index"] for r in prompt_completion_rows(d)] == [0, 2]


@pytest.mark.parametrize("targets", ["all", "last"])
def test_export_prompt_completion_loads_in_datasets_as_trl_rows(tmp_path, targets):
    datasets = pytest.importorskip("datasets")
    corpus = make_corpus(tmp_path / "run", n=10, rejected=2)
    kept = read_dialogues(corpus / KEPT_FILE)
    out = tmp_path / "pc.jsonl"
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "prompt-completion", "--targets", targets,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    replies = sum(t.role == "supporter" for d in kept for t in d.turns)
    assert len(rows) == (replies if targets == "all" else len(kept))
    assert f"exported {len(rows)} supporter replies of {len(kept)} dialogues" in result.output
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert {"prompt", "completion"} <= set(ds.column_names) and "messages" not in ds.column_names
    first = ds[0]
    assert first["prompt"][0] == SYSTEM and first["prompt"][-1]["role"] == "user"
    assert [m["role"] for m in first["completion"]] == ["assistant"]


def test_openai_targets_last_says_trl_reads_no_weight(tmp_path):
    corpus = make_corpus(tmp_path / "run", n=4, rejected=0)
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "openai", "--targets", "last",
                                      "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "for TRL use --format prompt-completion --targets last" in result.output


def test_min_margin_outside_dpo_is_bad_input(tmp_path):
    corpus = make_corpus(tmp_path / "run", n=4, rejected=0)
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "openai", "--min-margin", "1",
                                      "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "--min-margin applies to the dpo format only" in result.output
