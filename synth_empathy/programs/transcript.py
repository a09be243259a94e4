"""How a persona, a situation and a conversation are written into program inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from synth_empathy.schema import Persona, Seed, Turn

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
    return f"{p.name}, age {p.age_band}, {p.occupation}; tends to be {p.communication_style.replace('_', '-')}."


def conversation_text(turns: Sequence[Turn], viewpoint: str = "neutral") -> str:
    """Render turns as labelled lines; the seeker's own view calls itself 'You'."""
    if viewpoint == "seeker":
        names = _NAMES
    else:
        names = {"seeker": "Seeker", "supporter": "Supporter"}
    return "\n".join(f"{names[t.role]}: {t.text}" for t in turns)


def last_seeker_message(turns: Sequence[Turn]) -> str:
    return next((t.text for t in reversed(turns) if t.role == "seeker"), "")
