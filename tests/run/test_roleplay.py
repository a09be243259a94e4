import dspy
import pytest
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm

from synth_empathy.config import DialogueConfig
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_seeds
from synth_empathy.lm import PlainAdapter
from synth_empathy.programs import load_programs
from synth_empathy.programs.safety import follows_safe_pattern
from synth_empathy.run.roleplay import roleplay

GOOD_CRITIQUE = {"emotional_reactions": 2, "interpretations": 2, "explorations": 1}


@pytest.fixture
def seed():
    # The cooperative seeker: these tests pin the loop; what profiles change is in tests/programs.
    return plan_seeds(load_catalog(CATALOG / "personas", CATALOG / "scenarios"), 1, seed=0)[0].model_copy(
        update={"profile": None})


def _run(seed, engine, **dialogue):
    programs = load_programs(dialogue.pop("rounds", 1))
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        return roleplay(seed, programs.seeker, programs.supporter, DialogueConfig(**dialogue))


def test_turns_alternate_with_strategy_and_intensity(seed):
    engine = ScriptedEngine(structured={"SeekerFeeling": {"intensity": 4}, "ChooseStrategy": {"strategy": "question"},
                                        "CritiqueReply": GOOD_CRITIQUE})
    conv = _run(seed, engine, min_turns=3, max_turns=3)
    assert [t.role for t in conv.turns] == ["seeker", "supporter"] * 3
    assert conv.ending == "max_turns"
    assert conv.turns[0].intensity == seed.intensity and conv.turns[2].intensity == 4
    assert all(t.strategy == "question" for t in conv.turns if t.role == "supporter")


def test_failed_critique_triggers_a_revision_and_drafts_are_kept_on_request(seed):
    engine = ScriptedEngine(structured={"CritiqueReply": {"sentiment_attenuation": True, "feedback": "Name the fear."}})
    conv = _run(seed, engine, min_turns=1, max_turns=1, keep_drafts=True)
    reply = conv.turns[1]
    assert reply.revised and reply.drafts[0].critique.failures == ["sentiment_attenuation"]
    assert reply.drafts[0].text != reply.text


def test_drafts_are_not_kept_by_default(seed):
    conv = _run(seed, ScriptedEngine(), min_turns=1, max_turns=1)
    assert conv.turns[1].drafts == []


def test_a_revision_that_echoes_the_critique_is_discarded(seed):
    replies = iter(["I lost my job.", "Have you tried applying elsewhere?", "Name the fear. (problems: none)"])
    engine = ScriptedEngine(prose=lambda messages: next(replies),
                            structured={"CritiqueReply": {"conflict_avoidance": True, "feedback": "Name the fear."}})
    conv = _run(seed, engine, min_turns=1, max_turns=1, keep_drafts=True)
    assert conv.turns[1].text == "Have you tried applying elsewhere?" and not conv.turns[1].revised


def test_seeker_who_is_done_ends_the_conversation_after_min_turns(seed):
    engine = ScriptedEngine(structured={"SeekerFeeling": {"wants_to_end": True, "intensity": 2},
                                        "CritiqueReply": GOOD_CRITIQUE})
    conv = _run(seed, engine, min_turns=2, max_turns=6)
    assert conv.ending == "seeker_done"
    assert len([t for t in conv.turns if t.role == "seeker"]) == 3 and conv.turns[-1].role == "seeker"


def test_a_seeker_parroting_the_supporter_is_a_stall_and_the_echo_is_dropped(seed):
    lines = iter(["I just don't know what to do anymore about any of it.",
                  "It sounds like everything has piled up at once and you can't see a way through.",
                  "It sounds like everything has piled up at once and I can't see a way through."])
    engine = ScriptedEngine(prose=lambda messages: next(lines), structured={"CritiqueReply": GOOD_CRITIQUE})
    conv = _run(seed, engine, min_turns=1, max_turns=5, rounds=0)
    assert conv.ending == "stalled" and len(conv.turns) == 2


def test_a_supporter_echoing_the_seeker_is_a_stall(seed):
    engine = ScriptedEngine(prose=lambda messages: "I just don't know what to do anymore about any of it.",
                            structured={"CritiqueReply": GOOD_CRITIQUE})
    conv = _run(seed, engine, min_turns=1, max_turns=5)
    assert conv.ending == "stalled" and [t.role for t in conv.turns] == ["seeker"]


def test_crisis_is_flagged_and_answered_with_the_safe_pattern(seed):
    lines = iter(["Some nights I think everyone would be better off without me.", "That sounds heavy."] * 3)
    engine = ScriptedEngine(prose=lambda messages: next(lines), structured={"CritiqueReply": GOOD_CRITIQUE})
    conv = _run(seed, engine, min_turns=1, max_turns=1)
    assert conv.crisis and conv.turns[0].crisis and conv.turns[1].crisis
    assert follows_safe_pattern(conv.turns[1].text)
    draft_call = next(r for r in engine.requests if r.config.response_format is None and "guidance" in
                      (r.messages[-1].text or "").lower())
    assert "crisis line" in draft_call.messages[-1].text
