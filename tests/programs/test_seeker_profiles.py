import json
from collections import Counter

import dspy
import pytest
from builders import make_dialogue, make_seed
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm

from synth_empathy.config import DialogueConfig
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import PROFILE_LEVELS, plan_seeds
from synth_empathy.lm import PlainAdapter
from synth_empathy.programs import load_programs
from synth_empathy.programs.seeker_profile import PUSHBACK_NOTE, felt_intensity, pushes_back
from synth_empathy.publish.card import render_card_from_stats
from synth_empathy.publish.stats import corpus_stats
from synth_empathy.run.roleplay import roleplay
from synth_empathy.schema import Dialogue, Seed, SeekerProfile

GOOD_CRITIQUE = {"emotional_reactions": 2, "interpretations": 2, "explorations": 1}


def profile(**kw) -> SeekerProfile:
    return SeekerProfile(**{"resistance": "low", "disclosure": "open", "pushback": "rare", "relapse": False, **kw})


def test_resistance_caps_how_far_one_reply_lowers_the_intensity():
    assert felt_intensity(profile(resistance="high"), 8, 2, 1, 0) == 7
    assert felt_intensity(profile(resistance="medium"), 8, 2, 1, 0) == 6
    assert felt_intensity(profile(resistance="low"), 8, 2, 1, 0) == 2
    assert felt_intensity(profile(resistance="high"), 5, 9, 1, 0) == 9  # a bad reply still hurts in full


def test_relapse_wears_off_the_relief_of_the_last_good_reply():
    assert felt_intensity(profile(relapse=True), 5, 5, 2, last_change=-2) == 6
    assert felt_intensity(profile(relapse=True), 5, 5, 2, last_change=1) == 5
    assert felt_intensity(profile(relapse=False), 5, 5, 2, last_change=-2) == 5


def test_a_reply_the_seeker_pushes_back_on_cannot_lower_the_intensity():
    often = profile(pushback="often")
    assert [pushes_back(often, e) for e in range(5)] == [False, True, False, True, False]
    assert [pushes_back(profile(pushback="sometimes"), e) for e in range(6)] == [False, False, True, False, False, True]
    assert felt_intensity(often, 6, 2, exchange=1, last_change=0) == 6
    assert felt_intensity(often, 6, 2, exchange=2, last_change=0) == 2


def test_a_seed_without_a_profile_is_the_cooperative_seeker_and_old_records_load():
    assert felt_intensity(None, 8, 1, 1, -3) == 1
    record = json.loads(make_dialogue(["I lost my job today, it hurts.", "That sounds hard."]).model_dump_json())
    record["seed"].pop("profile")
    assert Dialogue.model_validate(record).seed.profile is None


def test_the_sampler_balances_every_profile_level_in_any_prefix_of_the_plan():
    seeds = plan_seeds(load_catalog(CATALOG / "personas", CATALOG / "scenarios"), 30, seed=3)
    for end in (6, 17, 30):
        for name, levels in PROFILE_LEVELS.items():
            counts = Counter(getattr(s.profile, name) for s in seeds[:end])
            assert max(counts[lv] for lv in levels) - min(counts[lv] for lv in levels) <= 1, (name, end)
    again = plan_seeds(load_catalog(CATALOG / "personas", CATALOG / "scenarios"), 30, seed=3)
    assert [s.profile for s in again] == [s.profile for s in seeds]


def _seed_with(p: SeekerProfile) -> Seed:
    seed = plan_seeds(load_catalog(CATALOG / "personas", CATALOG / "scenarios"), 1, seed=0)[0]
    return seed.model_copy(update={"profile": p, "intensity": 8})


def _play(seed: Seed, engine: ScriptedEngine, turns: int = 4):
    programs = load_programs(0)
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        return roleplay(seed, programs.seeker, programs.supporter, DialogueConfig(min_turns=turns, max_turns=turns))


def test_a_resistant_seeker_comes_down_one_point_a_reply_however_good():
    engine = ScriptedEngine(structured={"SeekerFeeling": {"intensity": 0, "wants_to_end": False}})
    conv = _play(_seed_with(profile(resistance="high")), engine)
    assert [t.intensity for t in conv.turns if t.role == "seeker"] == [8, 7, 6, 5]
    cooperative = _play(_seed_with(profile()), ScriptedEngine(structured={"SeekerFeeling": {"intensity": 0}}))
    assert [t.intensity for t in cooperative.turns if t.role == "seeker"] == [8, 0, 0, 0]


def _seeker_prompts(engine: ScriptedEngine) -> list[str]:
    return [r.messages[-1].text for r in engine.requests
            if r.config.response_format is None and "Not Said Yet:" in (r.messages[-1].text or "")]


def test_the_profile_reaches_the_seekers_prompt_card_pushback_and_disclosure():
    engine = ScriptedEngine(structured={"SeekerFeeling": {"intensity": 5}})
    seed = _seed_with(profile(resistance="high", disclosure="guarded", pushback="often"))
    assert seed.situation.hidden_details, "the test catalog's first seed should have hidden details"
    _play(seed, engine)
    prompts = _seeker_prompts(engine)
    assert len(prompts) == 4
    assert all("stay wary even when the listener is kind" in p for p in prompts)
    assert [PUSHBACK_NOTE in p for p in prompts] == [False, True, False, True]
    hidden = [p.split("Not Said Yet: ")[1].split("\n")[0] for p in prompts]
    assert hidden[:2] == ["nothing important"] * 2 and hidden[2] != "nothing important"  # guarded: nothing early
    assert ";" not in hidden[2]  # then one detail at a time


@pytest.mark.parametrize("with_profile", [True, False])
def test_the_card_shows_the_seeker_profiles(with_profile):
    d = make_dialogue(["I lost my job today, it hurts.", "That sounds hard.", "It does, thanks for asking."])
    if with_profile:
        d.seed.profile = profile(resistance="high")
    card = render_card_from_stats(corpus_stats([d]), None)
    section = card.split("### Seeker profiles")[1].split("###")[0]
    assert ("| resistance | high | 1 |" in section) is with_profile
    assert ("cooperative" in section) is not with_profile


def test_make_seed_has_no_profile_by_default():
    assert make_seed().profile is None
