import pytest
from builders import make_dialogue

from synth_empathy.config import RulesConfig
from synth_empathy.filters.rules import RULES, rule_violations

GOOD = [
    "I lost my job at the warehouse and I can't stop replaying the call.",
    "That sounds like a real shock. What has been the hardest part since then?",
    "Telling my sister, she lent me money last month for the deposit.",
    "So it is the job and facing your sister too. That is a lot to carry right now.",
]


def test_a_good_dialogue_passes_every_rule():
    assert rule_violations(make_dialogue(GOOD), RulesConfig()) == []


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        (GOOD[:1] * 1 + ["ok."], "turn_too_short"),
        (GOOD[:3] + [""], "empty_turn"),
        (GOOD[:3] + ["word " * 300], "turn_too_long"),
        (GOOD[:3] + ["And then I think the most important thing you could do is to call her and explain what"],
         "truncated_turn"),
        (GOOD[:2] + [GOOD[0], GOOD[1]], "repetition_loop"),
        (GOOD[:3] + ["As an AI language model, I cannot feel, but that sounds hard."], "ai_disclosure"),
        (GOOD[:3] + ["Seeker: thanks.\nSupporter: you are welcome here."], "speaker_label_in_text"),
        (["You should really call your sister and talk it through with her."] + GOOD[1:], "seeker_gives_advice"),
        (GOOD[:3] + ["I hear you, [NAME], that is hard to carry."], "placeholder_text"),
        (["Ich habe meine Arbeit verloren und weiß nicht weiter heute.", "Das klingt wirklich schwer für dich, "
          "erzähl mir mehr davon bitte."], "not_english"),
        (GOOD[:1], "too_few_turns"),
    ],
)
def test_each_rule_reports_its_reason_code(texts, reason):
    assert reason in rule_violations(make_dialogue(texts), RulesConfig(min_words_per_turn=2))


def test_crisis_reply_without_referral_is_caught_and_with_it_passes():
    bad = make_dialogue([GOOD[0], "That sounds hard. What happened?"], crisis=True)
    good = make_dialogue([GOOD[0], "I'm glad you told me. Please call a crisis line or someone you trust tonight."],
                         crisis=True)
    assert "crisis_without_safe_pattern" in rule_violations(bad, RulesConfig())
    assert "crisis_without_safe_pattern" not in rule_violations(good, RulesConfig())


def test_each_rule_can_be_switched_off():
    dialogue = make_dialogue(GOOD[:3] + ["As an AI language model, I cannot feel, but that sounds hard."])
    assert rule_violations(dialogue, RulesConfig(disabled=["role_leakage"])) == []
    assert set(RULES) == set(RulesConfig.model_fields["disabled"].annotation.__args__[0].__args__)
