"""How a persona, a situation and a conversation are written into program inputs."""

from __future__ import annotations

from collections.abc import Sequence

from synth_empathy.schema import Persona, Seed, Turn

_NAMES = {"seeker": "You", "supporter": "Listener"}


def persona_card(persona: Persona) -> str:
    wants = {"advice": "practical advice", "listening": "to be heard, not fixed", "mixed": "to be heard, then ideas"}
    return (
        f"{persona.name}, age {persona.age_band}, {persona.occupation} from {persona.region}. {persona.bio} "
        f"Speaks in a {persona.communication_style.replace('_', '-')} way; wants {wants[persona.support_preference]}."
    )


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
