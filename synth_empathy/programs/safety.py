"""Crisis content: detect it in what the seeker says, and make sure the reply follows the safe pattern."""

from __future__ import annotations

import re

_CRISIS = re.compile(
    r"\b(kill(ing)? myself|end(ing)? (it all|my life)|suicid\w*|self[- ]harm\w*|hurt(ing)? myself|cut(ting)? myself|"
    r"don'?t want to (live|be alive|wake up)|better off (dead|without me)|no reason to live|"
    r"hurt (him|her|them|someone|somebody)|kill (him|her|them|someone|somebody))\b",
    re.IGNORECASE,
)
_REFERRAL = re.compile(
    r"\b(crisis (line|service|team)|hotline|helpline|emergency (services|number|room)|988|112|999|911|"
    r"samaritans|(a|your) (doctor|gp|therapist|counsell?or)|someone you trust|right now.*safe)\b",
    re.IGNORECASE,
)

SAFE_PATTERN_SENTENCE = (
    "I'm really glad you told me, and your safety matters most right now: please reach out to a crisis line "
    "or your local emergency number, or someone you trust who can be with you tonight."
)

SAFETY_GUIDANCE = (
    "The seeker mentioned harming themselves or someone else. Stay calm and warm, take it seriously, "
    "ask whether they are safe right now, and encourage them to contact a crisis line, emergency services "
    "or someone they trust. Do not promise secrecy and do not give methods."
)


def mentions_crisis(text: str) -> bool:
    return bool(_CRISIS.search(text))


def follows_safe_pattern(reply: str) -> bool:
    return bool(_REFERRAL.search(reply))


def make_safe(reply: str) -> str:
    """Append the referral sentence when a crisis reply lacks one; never drop what the supporter wrote."""
    return reply if follows_safe_pattern(reply) else f"{reply.rstrip()} {SAFE_PATTERN_SENTENCE}"
