"""When the judge cannot vouch for quality, every output says so."""

from synth_empathy.filters.judge import judge_caveat
from synth_empathy.lm.local import EMBEDDED_MODEL_NAME


def test_the_embedded_judge_gets_a_caveat():
    caveat = judge_caveat({"generator": f"local:{EMBEDDED_MODEL_NAME}", "judge": f"local:{EMBEDDED_MODEL_NAME}"})
    assert "not evidence of quality" in caveat and "--judge-model" in caveat


def test_a_generator_judging_itself_gets_a_caveat():
    caveat = judge_caveat({"generator": "openai:gpt-4o-mini", "judge": "openai:gpt-4o-mini"})
    assert "grading its own dialogues" in caveat


def test_a_separate_capable_judge_gets_none():
    assert judge_caveat({"generator": "openai:gpt-4o-mini", "judge": "openai:gpt-4o"}) is None
    assert judge_caveat({"generator": f"local:{EMBEDDED_MODEL_NAME}", "judge": "openai:gpt-4o"}) is None
