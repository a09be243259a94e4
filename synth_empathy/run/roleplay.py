"""The conversation loop: seeker and supporter take turns until the seeker is done, it stalls, or time runs out."""

from __future__ import annotations

from dataclasses import dataclass

from synth_empathy.config import DialogueConfig
from synth_empathy.programs.safety import mentions_crisis
from synth_empathy.programs.seeker import Seeker
from synth_empathy.programs.supporter import Supporter
from synth_empathy.programs.transcript import (
    conversation_text,
    first_person,
    not_said_yet,
    seeker_brief,
    seeker_character,
    seeker_feeling,
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


def roleplay(seed: Seed, seeker: Seeker, supporter: Supporter, config: DialogueConfig) -> Conversation:
    """Run one dialogue. Each exchange is a seeker message then a supporter reply; the seeker's
    hidden intensity is updated after every reply and recorded on its next message."""
    turns: list[Turn] = []
    intensity = seed.intensity
    character = seeker_character(seed)
    crisis = False
    for exchange in range(config.max_turns):
        closing = False
        if exchange > 0:
            feel = seeker.react(emotion=seed.emotion, previous_intensity=intensity,
                                seeker_message=turns[-2].text, listener_reply=turns[-1].text)
            intensity = max(0, min(10, int(feel.intensity)))
            closing = bool(feel.wants_to_end) and exchange >= config.min_turns
        message = trim_sentences(seeker(character=character, situation=first_person(seed.situation.text),
                                        feeling=seeker_feeling(seed.emotion, intensity, closing),
                                        not_said_yet=not_said_yet(seed, turns),
                                        conversation=conversation_text(turns, viewpoint="seeker")).message)
        if turns and repeats_earlier(message, [t.text for t in turns]):
            return Conversation(turns, "stalled", crisis)  # the repeated message adds nothing: drop it
        flagged = mentions_crisis(message)
        crisis = crisis or flagged
        turns.append(Turn(role="seeker", text=message, intensity=intensity, crisis=flagged))
        if closing:
            return Conversation(turns, "seeker_done", crisis)
        reply = supporter(seeker=seeker_brief(seed), conversation=conversation_text(turns), crisis=flagged,
                          language=seed.language)
        if repeats_earlier(reply.reply, [t.text for t in turns]):
            return Conversation(turns, "stalled", crisis)
        turns.append(Turn(
            role="supporter", text=trim_sentences(reply.reply), strategy=reply.strategy, revised=reply.revised,
            drafts=reply.drafts if config.keep_drafts else [], crisis=flagged,
        ))
    return Conversation(turns, "max_turns", crisis)
