"""optimize with human labels: people's verdicts, rewrites and EPITOME levels over the judge's."""

from __future__ import annotations

import dspy
from builders import GOOD_TEXTS, make_dialogue
from review_corpus import label
from scripted import ScriptedEngine, scripted_lm
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.lm import PlainAdapter
from synth_empathy.optimize import compile_program, judge_metric, trainset
from synth_empathy.programs import load_programs
from synth_empathy.schema import TurnEdit


def _dialogues():
    return [make_dialogue(GOOD_TEXTS, ident=f"d{i}") for i in range(3)]


def test_rejected_dialogues_are_left_out_and_edited_turns_are_learnt_as_rewritten():
    labels = [label("d0", keep=False), label("d0", reviewer="ben", keep=False),
              label("d1", edits=[TurnEdit(index=3, original=GOOD_TEXTS[3], text="Rewritten reply.")])]
    examples = trainset("supporter", _dialogues(), 100, labels)
    assert len(examples) == 4  # d0 rejected by both reviewers: its two supporter turns are gone
    assert [ex.reply for ex in examples[:2]] == [GOOD_TEXTS[1], "Rewritten reply."]
    tie = [label("d0", keep=False), label("d0", reviewer="ben", keep=True)]
    assert len(trainset("supporter", _dialogues(), 100, tie)) == 6  # a tie keeps


def test_the_critique_metric_takes_human_levels_as_ground_truth_without_asking_the_judge():
    examples = trainset("critique", _dialogues(), 100, [label("d2", er=2, ip=0, ex=1)])
    truth = [ex for ex in examples if ex.get("human_levels")]
    assert len(truth) == 1 and truth[0].reply == GOOD_TEXTS[3]  # the last reply of the labelled dialogue
    judge_engine = ScriptedEngine(structured={"JudgeDialogue": {"emotional_reactions": 0, "interpretations": 0,
                                                                 "explorations": 0}})
    metric = judge_metric("critique", load_programs(1), scripted_lm(judge_engine))
    pred = dspy.Prediction(er=2, ip=0, ex=1)
    with dspy.context(adapter=PlainAdapter()):
        assert metric(truth[0], pred) == 1.0  # the reviewer's levels exactly
        assert metric(examples[0], pred) == 0.5  # the judge's (0, 0, 0): gaps 2 + 0 + 1 of 6


def test_optimize_refuses_a_labels_file_that_is_not_there(tmp_path):
    trainset_path = tmp_path / "dialogues.jsonl"
    trainset_path.write_text("".join(d.model_dump_json() + "\n" for d in _dialogues()))
    result = CliRunner().invoke(app, ["optimize", "--program", "seeker", "--trainset", str(trainset_path),
                                      "--out", str(tmp_path / "out"), "--labels", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_bootstrap_compiles_the_critique_on_a_labelled_trainset():
    programs = load_programs(1)
    examples = trainset("critique", _dialogues(), 6, [label("d0", er=1, ip=1, ex=1), label("d1", keep=False)])
    judge = scripted_lm(ScriptedEngine(structured={"JudgeDialogue": {"sensibility": 9, "rationality": 9}}))
    with dspy.context(lm=scripted_lm(ScriptedEngine()), adapter=PlainAdapter()):
        compiled = compile_program("critique", "bootstrap", programs, examples, judge, 1)
    assert len(examples) == 4 and any(p.demos for _, p in compiled.named_predictors())
