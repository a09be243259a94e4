"""How a persona, a situation, a feeling and a conversation are written into program inputs: every program
input that is not a plain field of a record is rendered here, for generation and optimization alike."""

from __future__ import annotations

import re
from collections.abc import Sequence

from synth_empathy.languages import DEFAULT_LANGUAGE, get_language
from synth_empathy.programs.seeker_profile import PUSHBACK_NOTE, disclosable, profile_card, pushes_back
from synth_empathy.schema import Persona, Seed, Turn
from synth_empathy.text import words

_NAMES = {"seeker": "You", "supporter": "Listener"}


def persona_card(persona: Persona) -> str:
    wants = {"advice": "practical advice", "listening": "to be heard, not fixed", "mixed": "to be heard, then ideas"}
    return (
        f"{persona.name}, age {persona.age_band}, {persona.occupation} from {persona.region}. {persona.bio} "
        f"Speaks in a {persona.communication_style.replace('_', '-')} way; wants {wants[persona.support_preference]}."
    )


# Catalog situations speak of the seeker as singular "they"; a small model asked to speak as the
# seeker echoes "they", so the seeker reads its situation in the first person.
_FIRST_PERSON = [
    (r"\bthey're\b", "I'm"), (r"\bthey've\b", "I've"), (r"\bthey'd\b", "I'd"), (r"\bthey'll\b", "I'll"),
    (r"\bthey are\b", "I am"), (r"\bthey were\b", "I was"), (r"\bthey have\b", "I have"),
    (r"\bthey\b", "I"), (r"\btheir\b", "my"), (r"\btheirs\b", "mine"), (r"\bthemselves\b", "myself"),
    (r"\bthemself\b", "myself"), (r"\bthem\b", "me"), (r"\b(and|but) has\b", r"\1 have"),
    (r"\b(and|but) is\b", r"\1 am"),
]


_SUBJECTLESS = {"Was": "I was", "Has": "I have", "Is": "I am", "Can't": "I can't", "Couldn't": "I couldn't",
                "Finally": "I finally", "Accidentally": "I accidentally", "Just": "I just", "Had": "I had"}
_PAST = frozenset("Got Found Went Came Took Spent Told Lost Met Won Made Saw Gave Sold Tore Woke Stood Paid Left Ran "
                  "Fell Broke Heard Said Began Became Drove Wrote Kept Felt Sent Built Bought Brought Caught Taught "
                  "Thought Let Forgot Hid Held".split())
_NOT_VERBS = frozenset({"Widowed", "Red", "Bed", "Seed", "Need"})


def first_person(text: str) -> str:
    """'Their sister turned up after they moved.' -> 'My sister turned up after I moved.'"""
    out = text
    for pattern, repl in _FIRST_PERSON:
        out = re.sub(pattern, repl, out, flags=re.IGNORECASE)
    out = re.sub(r"(^|[.!?]\s+)(i|my|i'm|i've)\b", lambda m: m.group(1) + m.group(2).capitalize(), out)
    first, _, rest = out.partition(" ")
    if first in _SUBJECTLESS:
        out = f"{_SUBJECTLESS[first]} {rest}"
    elif first in _PAST or (first.endswith("ed") and first not in _NOT_VERBS):
        out = f"I {first.lower()} {rest}"  # "Got laid off" -> "I got laid off"
    return out


def trim_sentences(text: str, limit: int = 3) -> str:
    """Keep at most `limit` whole sentences; a small model that rambles is cut at a sentence end, not mid-word."""
    sentences = re.findall(r"[^.!?]+[.!?]+[\"')\]]*|[^.!?]+$", text.strip())
    kept = "".join(sentences[:limit]).strip()
    return kept or text.strip()


def seeker_brief(seed: Seed) -> str:
    """What the supporter may know up front: who they are talking to (not the hidden details)."""
    p = seed.persona
    brief = f"{p.name}, age {p.age_band}, {p.occupation}; tends to be {p.communication_style.replace('_', '-')}."
    if seed.language != DEFAULT_LANGUAGE:
        brief += f" Speaks {get_language(seed.language).name}."
    return brief


def seeker_character(seed: Seed) -> str:
    """The seeker's `character` input: its persona card, how its profile makes it behave, and the language it
    speaks when that is not English."""
    parts = (persona_card(seed.persona), profile_card(seed.profile), write_in(seed.language))
    return " ".join(part for part in parts if part)


def write_in(language: str) -> str:
    """The sentence that asks for a reply in `language`; empty for English, the language the prompts are in, so
    an English run's prompts stay as they were."""
    if language == DEFAULT_LANGUAGE:
        return ""
    lang = get_language(language)
    return f"Write only in {lang.name} ({lang.native}), never in English."


def turn_line(role: str, text: str, viewpoint: str = "neutral") -> str:
    """One labelled line of a transcript; the seeker's own view calls itself 'You'."""
    names = _NAMES if viewpoint == "seeker" else {"seeker": "Seeker", "supporter": "Supporter"}
    return f"{names[role]}: {text}"


def conversation_text(turns: Sequence[Turn], viewpoint: str = "neutral") -> str:
    """Render turns as labelled lines; the seeker's own view calls itself 'You'."""
    return "\n".join(turn_line(t.role, t.text, viewpoint) for t in turns)


def with_reply(conversation: str, reply: str) -> str:
    """A conversation with one more supporter line: what the judge scores for a candidate reply."""
    return "\n".join(part for part in (conversation, turn_line("supporter", reply)) if part)


def seeker_feeling(emotion: str, intensity: int, closing: bool = False, push_back: bool = False) -> str:
    """The seeker's `feeling` input; `closing` when it has decided to end the conversation with this message,
    `push_back` on the exchanges its profile misreads the listener (programs.seeker_profile.pushes_back)."""
    feeling = f"{emotion}, intensity {intensity} out of 10"
    if push_back and not closing:
        feeling += f"; {PUSHBACK_NOTE}"
    if closing:
        feeling += "; you have said what you needed to and are ready to end the conversation now"
    return feeling


def seeker_feeling_at(seed: Seed, turns: Sequence[Turn], intensity: int, closing: bool = False) -> str:
    """`seeker_feeling` of the seeker message that follows `turns`, with its profile's push-back schedule."""
    exchange = sum(t.role == "seeker" for t in turns)
    return seeker_feeling(seed.emotion, intensity, closing, pushes_back(seed.profile, exchange))


def not_said_yet(seed: Seed, turns: Sequence[Turn]) -> str:
    """The seeker's hidden details it has not brought up yet and, by its profile's disclosure pace, may bring up in
    the message that follows `turns`, in the first person."""
    said = set(words(" ".join(t.text for t in turns if t.role == "seeker")))
    # A detail counts as said once most of its words have come up in the seeker's messages.
    left = [d for d in seed.situation.hidden_details if len(set(words(d)) & said) <= 0.6 * len(set(words(d)))]
    exchange = sum(t.role == "seeker" for t in turns)
    return "; ".join(first_person(d) for d in disclosable(seed.profile, left, exchange)) or "nothing important"
