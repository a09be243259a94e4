import json

import dspy
import pytest
from scripted import ScriptedEngine, scripted_lm

from synth_empathy.lm.adapter import PlainAdapter, clean_prose, output_schema
from synth_empathy.lm.local import grammar_schema
from synth_empathy.programs.judge import JudgeDialogue
from synth_empathy.programs.supporter import DraftReply


def test_prose_signature_gets_plain_text_and_a_line_stop():
    engine = ScriptedEngine(prose=["Supporter: \"That sounds so hard.\""])
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        out = dspy.Predict(DraftReply)(seeker="Ana", conversation="Seeker: hi", strategy="question", guidance="")
    assert out.reply == "That sounds so hard."
    request = engine.requests[0]
    assert request.config.response_format is None and "\n" in request.config.stop


def test_structured_signature_is_forced_by_its_json_schema():
    engine = ScriptedEngine(structured={"JudgeDialogue": {"sensibility": 7}})
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        out = dspy.Predict(JudgeDialogue)(conversation="Seeker: hi\nSupporter: hello")
    assert out.sensibility == 7
    fmt = engine.requests[0].config.response_format
    assert fmt["type"] == "json_schema" and fmt["schema"]["properties"]["sensibility"]["maximum"] == 10


def test_out_of_range_answer_is_a_parse_error_not_a_silent_value():
    engine = ScriptedEngine(structured={"JudgeDialogue": {"sensibility": 23}})
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()), pytest.raises(Exception, match="less than"):
        dspy.Predict(JudgeDialogue)(conversation="Seeker: hi")


def test_demos_render_as_user_assistant_pairs():
    demo = dspy.Example(conversation="Seeker: x", rationale="r", sensibility=5, rationality=5, emotional_reactions=1,
                        interpretations=1, explorations=1, sentiment_attenuation=False, granularity_mismatch=False,
                        conflict_avoidance=False, linguistic_distancing=False)
    messages = PlainAdapter().format(JudgeDialogue, [demo], {"conversation": "Seeker: y"})
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert json.loads(messages[2]["content"])["sensibility"] == 5
    assert "JSON object" in messages[0]["content"]


def test_grammar_schema_bounds_strings_and_enumerates_small_int_ranges():
    schema = grammar_schema(output_schema(JudgeDialogue))
    assert schema["properties"]["sensibility"]["enum"] == list(range(11))
    assert schema["properties"]["rationale"]["maxLength"] > 0


@pytest.mark.parametrize(("raw", "clean"), [("Listener: I hear you.", "I hear you."), ("'Okay.'", "Okay."),
                                            ("Time: 5pm works", "Time: 5pm works")])
def test_clean_prose_strips_labels_and_quotes(raw, clean):
    assert clean_prose(raw) == clean
