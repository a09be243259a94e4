"""The RL environment: a policy plays the supporter, the seeker (the generator's seeker program, on the generator's
LM) answers, and its hidden intensity is the reward.

RLVER (arXiv 2507.03112) trained supporters on the simulated seeker's emotion as a verifiable reward. Here a step's
reward is how far the reply lowered the seeker's hidden intensity (0-10), over 10, so an episode's intensity reward
is (first intensity - last) / 10, in [-1, 1]; with `RewardWeights.judge` the judge's (sensibility + rationality) / 20
of the whole conversation is added when the episode ends. The seeker's profile (programs.seeker_profile) makes some
seekers resist, relapse and push back, so a policy cannot win by being merely pleasant.

Example:
    >>> env = SupportEnv(RunConfig())                     # the seeker on the embedded model, the train split
    >>> opening = env.reset(seed=0)                       # the seeker's first message
    >>> observation, reward, done, info = env.step("That sounds hard. What happened?")
    >>> env.messages()                                    # the chat so far, system message first: the next prompt
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dspy

from synth_empathy.config import MAX_N, RunConfig
from synth_empathy.corpus.manifest import now, package_version
from synth_empathy.errors import UserError, error_detail
from synth_empathy.filters.judge import score_dialogue
from synth_empathy.graphs.catalog import Catalog, load_catalog
from synth_empathy.graphs.sampler import iter_seeds
from synth_empathy.graphs.split import Split, split_catalog
from synth_empathy.lm import PlainAdapter, build_lm, model_label
from synth_empathy.programs import Programs, load_programs
from synth_empathy.publish.exports import DEFAULT_SYSTEM_PROMPT
from synth_empathy.run.generate import dspy_settings
from synth_empathy.run.roleplay import SeekerSide, repeats_earlier
from synth_empathy.schema import Dialogue, Provenance, Scores, Seed, Turn

# A policy: the chat so far (system message first, user = seeker, assistant = supporter) -> the supporter's reply.
Policy = Callable[[list[dict[str, str]]], str]
POLICY_STRATEGY = "other"  # a policy's turn has no ESConv strategy label; the record needs one


@dataclass(frozen=True)
class RewardWeights:
    intensity: float = 1.0  # per step: the drop in hidden intensity the reply caused, / 10
    judge: float = 0.0  # once, at the end: the judge's (sensibility + rationality) / 20


@dataclass
class Episode:
    """One finished episode: the conversation as a record, its return and the intensity it ended at."""

    dialogue: Dialogue
    total_reward: float
    final_intensity: int
    judge_error: str | None = None

    @property
    def intensity_drop(self) -> int:
        return self.dialogue.seed.intensity - self.final_intensity


class SupportEnv:
    """Plain-Python reset()/step() over seeds from the coverage-aware sampler, restricted to one side of the
    held-out scenario split (graphs.split).

    Args:
        config: the generator's model (the seeker runs on it), the judge, dialogue.max_turns / min_turns, the
            sampler's seed and weights, the catalogs.
        split: "train" (the default) or "eval" (the held-out situations `synth-empathy eval` plays).
        rewards: weights of the intensity and judge terms.
        score: judge every finished episode (default: when the judge term has weight); the scores are in the last
            step's info and on `dialogue()`.
        system_prompt: the system message of `messages()`: the exports' by default, so a model fine-tuned on an
            export sees the prompt it was trained with.
        generator_lm, judge_lm, programs, catalog: replacements for what the config describes (tests, sharing).
    """

    def __init__(self, config: RunConfig | None = None, *, split: Split = "train",
                 rewards: RewardWeights | None = None, score: bool | None = None,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, generator_lm: dspy.LM | None = None,
                 judge_lm: dspy.LM | None = None, programs: Programs | None = None,
                 catalog: Catalog | None = None) -> None:
        self.config = config or RunConfig()
        self.split = split
        self.rewards = rewards or RewardWeights()
        self.score = self.rewards.judge > 0 if score is None else score
        self.system_prompt = system_prompt
        self.catalog = split_catalog(catalog or load_catalog(self.config.personas_dir, self.config.scenarios_dir),
                                     split)
        self.generator_lm = generator_lm or build_lm(self.config.model)
        self._judge_lm = judge_lm
        self.programs = programs or load_programs(self.config.dialogue.critique_rounds, self.config.programs_dir)
        self._settings = {"adapter": PlainAdapter(), **dspy_settings(self.config)}
        self._plan: Iterator[Seed] = iter_seeds(self.catalog, MAX_N, self.config.seed,
                                                self.config.sampler.emotion_weights,
                                                self.config.sampler.problem_type_weights)
        self._seeds: list[Seed] = []
        self._next = 0
        self._side: SeekerSide | None = None
        self._scores: Scores | None = None
        self.ending: str | None = None
        self.total_reward = 0.0
        self.judge_error: str | None = None

    @property
    def judge_lm(self) -> dspy.LM:
        if self._judge_lm is None:  # built on first use: an environment that never scores needs no judge
            self._judge_lm = build_lm(self.config.judge_model())
        return self._judge_lm

    # -- episodes ---------------------------------------------------------------------------------

    def seed_at(self, index: int) -> Seed:
        """The `index`-th seed of this split's plan (deterministic for the config's sampler seed)."""
        if index < 0:
            raise UserError(f"an episode index is 0 or more, not {index}")
        while len(self._seeds) <= index:
            self._seeds.append(next(self._plan))
        return self._seeds[index]

    def reset(self, seed: int | Seed | None = None, opening: str | None = None) -> str:
        """Start an episode and return the seeker's first message. `seed`: an index into this split's plan, a
        Seed, or None for the next index after the last reset. `opening` replays a first message written before
        (so that all rollouts of a GRPO group start alike) instead of asking the seeker's LM."""
        if seed is None:
            seed = self._next
        if isinstance(seed, int):
            self._next = seed + 1
            seed = self.seed_at(seed)
        self._side = SeekerSide(seed, self.programs.seeker, self.config.dialogue)
        self._scores, self.ending, self.total_reward, self.judge_error = None, None, 0.0, None
        with dspy.context(lm=self.generator_lm, **self._settings):
            first = self._side.speak(opening)
        assert first is not None  # a first message cannot repeat an earlier one
        return first.text

    def step(self, supporter_text: str) -> tuple[str, float, bool, dict]:
        """The policy's reply -> (the seeker's next message, reward, done, info). The episode ends when the seeker
        is done (its closing message is the observation), when max_turns replies have been heard, or when either
        side only repeats what was said (the observation is then empty)."""
        side = self._side
        if side is None or self.ending is not None:
            raise RuntimeError("call reset() before step(), and again after an episode is done")
        text = supporter_text.strip()
        echo = repeats_earlier(text, [t.text for t in side.turns])
        reply = Turn(role="supporter", text=text, strategy=POLICY_STRATEGY, crisis=side.turns[-1].crisis)
        observation = ""
        with dspy.context(lm=self.generator_lm, **self._settings):
            change = side.hear(reply)
            if echo:
                self.ending = "stalled"
            elif side.exchange >= self.config.dialogue.max_turns:
                self.ending = "max_turns"
            else:
                message = side.speak()
                if message is None:
                    self.ending = "stalled"
                else:
                    observation = message.text
                    if side.closing:
                        self.ending = "seeker_done"
        reward = self.rewards.intensity * -change / 10
        info = {"seed_id": side.seed.id, "emotion": side.seed.emotion, "exchange": side.exchange,
                "intensity": side.intensity, "change": change, "crisis": side.crisis}
        if self.ending is not None:
            info["ending"] = self.ending
            reward += self._finish(info)
        self.total_reward += reward
        return observation, reward, self.ending is not None, info

    def _finish(self, info: dict) -> float:
        """Judge the finished conversation when asked; returns the judge's share of the reward."""
        if not self.score:
            return 0.0
        try:
            with dspy.context(lm=self.judge_lm, **self._settings):
                self._scores = score_dialogue(self.dialogue(), self.programs.judge, self.config.judge.samples)
        except Exception as exc:  # noqa: BLE001 - a judge failure costs the bonus, not the episode
            self.judge_error = info["judge_error"] = error_detail(exc)
            return 0.0
        info["scores"] = self._scores.model_dump()
        return self.rewards.judge * (self._scores.sensibility + self._scores.rationality) / 20

    # -- views --------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.ending is not None

    @property
    def intensity(self) -> int:
        """The seeker's hidden intensity now (for logging and evaluation; a policy should not see it)."""
        return self._current().intensity

    def messages(self) -> list[dict[str, str]]:
        """The chat so far as the policy sees it: the system message, then user = seeker, assistant = supporter."""
        chat = [{"role": "user" if t.role == "seeker" else "assistant", "content": t.text}
                for t in self._current().turns]
        return [{"role": "system", "content": self.system_prompt}, *chat]

    def dialogue(self, policy_label: str = "policy") -> Dialogue:
        """The episode so far as a dialogue record (the supporter's strategy is `other`: a policy names none)."""
        side = self._current()
        return Dialogue(
            id=side.seed.id, seed=side.seed, turns=list(side.turns), ending=self.ending or "in_progress",
            crisis=side.crisis, scores=self._scores,
            provenance=Provenance(generator_model=policy_label, judge_model=model_label(self.config.judge_model())
                                  if self._scores else None, config_fingerprint=self.config.fingerprint(),
                                  created=now(), package_version=package_version()))

    def play(self, policy: Policy, seed: int | Seed | None = None, policy_label: str = "policy") -> Episode:
        """One whole episode with `policy` as the supporter."""
        self.reset(seed)
        done = False
        while not done:
            _, _, done, _ = self.step(policy(self.messages()))
        return Episode(self.dialogue(policy_label), round(self.total_reward, 6), self.intensity, self.judge_error)

    def _current(self) -> SeekerSide:
        if self._side is None:
            raise RuntimeError("call reset() first")
        return self._side


def lm_policy(lm: dspy.LM) -> Policy:
    """A policy that is a chat model behind the LM layer (any backend): the chat in, its reply out."""
    from dspy.lm15 import Config, Message, Request

    roles = {"user": Message.user, "assistant": Message.assistant}
    # An explicit Request does not take the LM's own settings: without them a model may write until its context
    # is full.
    config = Config(max_tokens=lm.kwargs.get("max_tokens"), temperature=lm.kwargs.get("temperature"))

    def policy(messages: list[dict[str, str]]) -> str:
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        chat = tuple(roles[m["role"]](m["content"]) for m in messages if m["role"] != "system")
        return lm(Request(model=lm.model, system=system, messages=chat, config=config)).message.text or ""

    return policy
