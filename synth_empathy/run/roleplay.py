"""The conversation loop: seeker and supporter take turns until the seeker is done, it stalls, or time runs out."""

from __future__ import annotations

from dataclasses import dataclass

from synth_empathy.config import DialogueConfig
from synth_empathy.programs.safety import mentions_crisis
from synth_empathy.programs.seeker import Seeker
from synth_empathy.programs.seeker_profile import felt_intensity
from synth_empathy.programs.supporter import Supporter
from synth_empathy.programs.transcript import (
    conversation_text,
    first_person,
    not_said_yet,
    seeker_brief,
    seeker_character,
    seeker_feeling_at,
    trim_sentences,
)
from synth_empathy.schema import Seed, Turn
from synth_empathy.text import jaccard, words

STALL_SIMILARITY = 0.8


@dataclass
class Conversation:
    turns: list[Turn]
    ending: str
    crisis: bool


def repeats_earlier(text: str, earlier: list[str]) -> bool:
    """A message whose words mostly repeat an earlier message (its own, or the other side's: small models
    parrot) means the talk has stalled."""
    mine = set(words(text))
    return bool(mine) and any(jaccard(mine, set(words(prev))) >= STALL_SIMILARITY for prev in earlier)


class SeekerSide:
    """The seeker's half of a conversation, for role-play and for the RL environment alike: it speaks, hears the
    supporter's reply, and updates its hidden intensity by what its LM felt, bent by its profile
    (programs.seeker_profile). Call inside dspy.context(lm=<generator LM>)."""

    def __init__(self, seed: Seed, seeker: Seeker, config: DialogueConfig) -> None:
        self.seed = seed
        self.seeker = seeker
        self.config = config
        self.turns: list[Turn] = []
        self.intensity = seed.intensity
        self.last_change = 0
        self.crisis = False
        self.closing = False
        self._character = seeker_character(seed)

    @property
    def exchange(self) -> int:
        """How many seeker messages have been written."""
        return sum(t.role == "seeker" for t in self.turns)

    def speak(self, text: str | None = None) -> Turn | None:
        """The seeker's next message (closing when `hear` decided so), or None when it only repeats an earlier
        message: the talk has stalled, and the repeat is dropped. `text` replays a message written before (the
        RL environment starts every rollout of a group from the same opening) instead of asking the LM."""
        message = text if text is not None else trim_sentences(self.seeker(
            character=self._character, situation=first_person(self.seed.situation.text),
            feeling=seeker_feeling_at(self.seed, self.turns, self.intensity, self.closing),
            not_said_yet=not_said_yet(self.seed, self.turns),
            conversation=conversation_text(self.turns, viewpoint="seeker")).message)
        if self.turns and repeats_earlier(message, [t.text for t in self.turns]):
            return None
        flagged = mentions_crisis(message)
        self.crisis = self.crisis or flagged
        turn = Turn(role="seeker", text=message, intensity=self.intensity, crisis=flagged)
        self.turns.append(turn)
        return turn

    def hear(self, reply: Turn) -> int:
        """Take the supporter's reply and feel it: returns how it moved the hidden intensity (negative: it
        helped); `closing` says whether the seeker will now end the conversation."""
        self.turns.append(reply)
        feel = self.seeker.react(emotion=self.seed.emotion, previous_intensity=self.intensity,
                                 seeker_message=self.turns[-2].text, listener_reply=reply.text)
        before = self.intensity
        self.intensity = felt_intensity(self.seed.profile, before, int(feel.intensity), self.exchange,
                                        self.last_change)
        self.last_change = self.intensity - before
        self.closing = bool(feel.wants_to_end) and self.exchange >= self.config.min_turns
        return self.last_change


def roleplay(seed: Seed, seeker: Seeker, supporter: Supporter, config: DialogueConfig) -> Conversation:
    """Run one dialogue. Each exchange is a seeker message then a supporter reply; the seeker's
    hidden intensity is updated after every reply and recorded on its next message."""
    side = SeekerSide(seed, seeker, config)
    for exchange in range(config.max_turns):
        message = side.speak()
        if message is None:
            return Conversation(side.turns, "stalled", side.crisis)
        if side.closing:
            return Conversation(side.turns, "seeker_done", side.crisis)
        reply = supporter(seeker=seeker_brief(seed), conversation=conversation_text(side.turns), crisis=message.crisis,
                          language=seed.language)
        if repeats_earlier(reply.reply, [t.text for t in side.turns]):
            return Conversation(side.turns, "stalled", side.crisis)
        turn = Turn(role="supporter", text=trim_sentences(reply.reply), strategy=reply.strategy, revised=reply.revised,
                    drafts=reply.drafts if config.keep_drafts else [], crisis=message.crisis)
        if exchange + 1 < config.max_turns:
            side.hear(turn)
        else:
            side.turns.append(turn)  # the last reply: nothing more is said, so nothing is felt
    return Conversation(side.turns, "max_turns", side.crisis)
