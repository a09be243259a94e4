import dataclasses

import dspy
import pytest
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm, varied_prose

from synth_empathy.config import load_config
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.split import held_out_ids, split_catalog, split_point
from synth_empathy.publish.exports import DEFAULT_SYSTEM_PROMPT
from synth_empathy.schema import Situation
from synth_empathy.train.env import RewardWeights, SupportEnv, lm_policy
from synth_empathy.train.grpo import ENDED, ToolSupportEnv, _between_turns, env_reward, episode_rows

JUDGE = {"JudgeDialogue": {"sensibility": 8, "rationality": 6, "rationale": "Warm."}}


def config(**dialogue):
    return load_config(None, {"personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios"),
                              "dialogue": {"min_turns": 1, "max_turns": 3, **dialogue}})


def make_env(feelings=({"intensity": 3},), rewards=None, score=None, **dialogue):
    """An environment whose seeker feels the scripted `feelings` in turn (the last one repeats)."""
    feelings = list(feelings)
    engine = ScriptedEngine(prose=varied_prose(1))
    original = engine.complete

    def complete(request):
        name = (request.config.response_format or {}).get("name")
        if name == "SeekerFeeling":
            engine.structured["SeekerFeeling"] = {"wants_to_end": False, **(feelings.pop(0) if len(feelings) > 1
                                                                            else feelings[0])}
        return original(request)

    engine.complete = complete
    env = SupportEnv(config(**dialogue), generator_lm=scripted_lm(engine), rewards=rewards, score=score,
                     judge_lm=scripted_lm(ScriptedEngine(structured=JUDGE)))
    return env, engine


def cooperative(env):
    """Pin the episode's seed to the cooperative seeker, so the scripted intensities pass through unbent."""
    seed = env.seed_at(0)
    return seed.model_copy(update={"profile": None, "intensity": 8})


def test_each_step_is_rewarded_by_the_drop_in_hidden_intensity_and_turns_run_out():
    env, _ = make_env(feelings=[{"intensity": 6}, {"intensity": 7}, {"intensity": 2}])
    opening = env.reset(seed=cooperative(env))
    assert opening and env.messages()[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    steps = [env.step(text) for text in ("What happened, in your own words?", "That sounds lonely, being left out.",
                                         "You kept going anyway, which took real strength.")]
    assert [round(r, 3) for _, r, _, _ in steps] == [0.2, -0.1, 0.5]
    assert [d for _, _, d, _ in steps] == [False, False, True]
    assert steps[-1][3]["ending"] == "max_turns" and steps[-1][0] == ""
    assert env.total_reward == pytest.approx(0.6) and env.intensity == 2
    assert [m["role"] for m in env.messages()[1:]] == ["user", "assistant"] * 3
    with pytest.raises(RuntimeError):
        env.step("one more")


def test_the_episode_ends_when_the_seeker_is_done_with_its_closing_message():
    env, _ = make_env(feelings=[{"intensity": 4, "wants_to_end": True}])
    env.reset(seed=cooperative(env))
    observation, reward, done, info = env.step("I'm really glad you told me about this.")
    assert done and info["ending"] == "seeker_done" and observation
    assert env.messages()[-1] == {"role": "user", "content": observation}


def test_a_reply_that_parrots_the_seeker_ends_the_episode_as_stalled():
    env, _ = make_env()
    opening = env.reset(seed=cooperative(env))
    _, _, done, info = env.step(opening)
    assert done and info["ending"] == "stalled"


def test_the_judge_term_is_added_once_at_the_end():
    env, _ = make_env(feelings=[{"intensity": 8}], rewards=RewardWeights(intensity=1.0, judge=0.5), max_turns=1)
    env.reset(seed=cooperative(env))
    _, reward, done, info = env.step("That sounds hard, what happened next?")
    assert done and reward == pytest.approx(0.5 * (8 + 6) / 20)
    assert info["scores"]["sensibility"] == 8 and env.dialogue().scores.rationality == 6


def test_a_failing_judge_costs_the_bonus_not_the_episode():
    env, _ = make_env(rewards=RewardWeights(judge=1.0), max_turns=1)
    env._judge_lm = scripted_lm(ScriptedEngine(fail_on={"JudgeDialogue"}))
    env.reset(seed=cooperative(env))
    _, reward, done, info = env.step("That sounds hard, what happened next?")
    assert done and "scripted failure" in info["judge_error"] and reward == pytest.approx(0.5)


def test_the_profile_reaches_the_environment():
    env, _ = make_env(feelings=[{"intensity": 0}])
    seed = env.seed_at(0).model_copy(update={"intensity": 8, "profile": env.seed_at(0).profile.model_copy(
        update={"resistance": "high", "pushback": "rare", "relapse": False})})
    env.reset(seed=seed)
    _, reward, _, info = env.step("That sounds hard, what happened next?")
    assert info["intensity"] == 7 and reward == pytest.approx(0.1)


def test_episodes_come_from_the_train_split_in_a_fixed_order_and_openings_replay():
    env, engine = make_env()
    held = held_out_ids(load_catalog(CATALOG / "personas", CATALOG / "scenarios"))
    seeds = [env.seed_at(i) for i in range(6)]
    assert not {s.situation.id for s in seeds} & held
    again, _ = make_env()
    assert [again.seed_at(i).id for i in range(6)] == [s.id for s in seeds]
    calls = len(engine.requests)
    assert env.reset(seed=2, opening="I can't sleep since the letter came.") == "I can't sleep since the letter came."
    assert len(engine.requests) == calls and env.dialogue().seed.id == seeds[2].id


def test_play_runs_a_policy_lm_for_a_whole_episode():
    env, _ = make_env(feelings=[{"intensity": 2}])
    policy_engine = ScriptedEngine(prose=varied_prose(7))
    policy_lm = dspy.LM("scripted/policy", engine=policy_engine, cache=False, num_retries=0, max_tokens=120)
    episode = env.play(lm_policy(policy_lm), seed=cooperative(env), policy_label="m")
    assert episode.dialogue.ending == "max_turns" and episode.intensity_drop == 6
    assert episode.dialogue.provenance.generator_model == "m"
    first = policy_engine.requests[0]
    assert first.system == DEFAULT_SYSTEM_PROMPT and [m.role for m in first.messages] == ["user"]
    assert first.config.max_tokens == 120  # the model's own cap, not none
    assert all(t.strategy == "other" for t in episode.dialogue.turns if t.role == "supporter")


def test_the_held_out_split_is_by_situation_id_stable_and_never_empty():
    catalog = load_catalog(CATALOG / "personas", CATALOG / "scenarios")
    held = held_out_ids(catalog)
    assert held and len(held) < len(catalog.situations)
    train, evaluation = split_catalog(catalog, "train"), split_catalog(catalog, "eval")
    assert {s.id for s in evaluation.situations} == held
    assert not {s.id for s in train.situations} & held
    many = [Situation(id=f"x{i}", text="Lost a job.", emotions=["sad"], problem_type="job_crisis", domain="work")
            for i in range(200)]
    big = dataclasses.replace(catalog, situations=many)
    share = len(held_out_ids(big)) / len(many)
    assert 0.1 < share < 0.3
    grown = dataclasses.replace(catalog, situations=many[:120])
    assert held_out_ids(grown) == {s.id for s in many[:120] if split_point(s.id) < 0.2}  # same side, whatever else
    lone = dataclasses.replace(catalog, situations=many[:1])
    empty = "train" if held_out_ids(lone) else "eval"
    with pytest.raises(UserError, match=f"no situation for the {empty} split"):
        split_catalog(lone, empty)


def test_the_tool_env_speaks_through_reply_and_owns_its_reward():
    env, _ = make_env(feelings=[{"intensity": 5}], max_turns=2)
    rows = episode_rows(env, 2)
    assert [r["episode"] for r in rows] == [0, 1] and rows[0]["prompt"][-1]["content"] == rows[0]["opening"]
    tool = ToolSupportEnv(env)
    assert tool.reset(**rows[0]) is None
    assert env.messages()[1]["content"] == rows[0]["opening"]
    answer = tool.reply("That sounds hard, what happened next?")
    assert answer and answer != ENDED
    assert tool.reply("You did what you could with what you knew then.") == ENDED
    assert tool.reply("anything") == ENDED
    assert tool.get_reward() == pytest.approx(env.total_reward)
    assert env_reward([None, None], env_reward=[0.5, -0.1]) == [0.5, -0.1]


class ChatMLTokenizer:
    """SmolLM2's ChatML layout, one token per character: enough to check where the turns are cut."""

    eos_token = "<|im_end|>"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def encode(self, text, add_special_tokens=False):
        return list(text)


def test_the_tokens_between_turns_close_the_reply_and_open_the_next_generation():
    tok = ChatMLTokenizer()
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    ended = "".join(_between_turns(tok, chat, "hello", "again", ended=True))
    assert ended == "\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"
    cut = "".join(_between_turns(tok, chat, "hello", "again", ended=False))
    assert cut == "<|im_end|>" + ended
