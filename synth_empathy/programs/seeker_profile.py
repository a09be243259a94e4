"""What a seeker profile does: the rules that make a profiled seeker harder to help than a cooperative one.

The seeker's LM proposes a new intensity after every reply (programs.seeker.SeekerFeeling); these rules bend that
proposal by the profile, deterministically, so the intensity trajectory stays a verifiable reward:

- resistance caps how far one reply can lower the intensity (low: no cap, medium: 2 points, high: 1 point);
- relapse: after a reply that lowered it, 1 point of the relief has worn off by the next reply;
- pushback: on its scheduled exchanges the seeker misreads the reply (its message is told to push back), and
  that reply cannot lower the intensity at all (sometimes: every third exchange, often: every other one);
- disclosure paces the hidden details the seeker may bring up (open: all of them, gradual: the next one,
  guarded: none in the first two messages, then the next one).

A seed without a profile (corpora made before profiles) is the cooperative seeker: none of this applies.
"""

from __future__ import annotations

from collections.abc import Sequence

from synth_empathy.schema import SeekerProfile

MAX_DROP = {"low": 10, "medium": 2, "high": 1}
RELAPSE_POINTS = 1
GUARDED_MESSAGES = 2  # a guarded seeker's first messages reveal no hidden detail


def pushes_back(profile: SeekerProfile | None, exchange: int) -> bool:
    """Whether the seeker's message of `exchange` (0 = its opening) misreads or pushes back on the last reply."""
    if profile is None or exchange == 0:
        return False
    if profile.pushback == "often":
        return exchange % 2 == 1
    if profile.pushback == "sometimes":
        return exchange % 3 == 2
    return False


def felt_intensity(profile: SeekerProfile | None, previous: int, proposed: int, exchange: int,
                   last_change: int) -> int:
    """The hidden intensity after a reply: the LM's `proposed` value bent by the profile (see the module doc).
    `last_change` is how the previous reply moved it (negative: it helped)."""
    proposed = max(0, min(10, proposed))
    if profile is None:
        return proposed
    start = min(10, previous + (RELAPSE_POINTS if profile.relapse and last_change < 0 else 0))
    change = max(proposed - previous, -MAX_DROP[profile.resistance])
    if pushes_back(profile, exchange):
        change = max(change, 0)
    return max(0, min(10, start + change))


def disclosable(profile: SeekerProfile | None, left: Sequence[str], exchange: int) -> list[str]:
    """Which of the hidden details not said yet the seeker may bring up in the message of `exchange`."""
    if profile is None or profile.disclosure == "open":
        return list(left)
    if profile.disclosure == "guarded" and exchange < GUARDED_MESSAGES:
        return []
    return list(left[:1])


_RESISTANCE = {
    "low": "You warm up when someone really listens.",
    "medium": "Kindness alone does not make you feel better; it takes a reply that really gets it.",
    "high": "You doubt that talking helps and stay wary even when the listener is kind.",
}
_DISCLOSURE = {
    "open": "You say what is on your mind fairly openly.",
    "gradual": "You reveal one thing at a time.",
    "guarded": "You keep the painful parts to yourself until you trust the listener.",
}
_PUSHBACK = {
    "rare": "",
    "sometimes": "Now and then you take a reply the wrong way.",
    "often": "You often take replies the wrong way or push back on them.",
}


def profile_card(profile: SeekerProfile | None) -> str:
    """The profile as the seeker reads it about itself; empty for the cooperative seeker."""
    if profile is None:
        return ""
    parts = [_RESISTANCE[profile.resistance], _DISCLOSURE[profile.disclosure], _PUSHBACK[profile.pushback],
             "Even when a reply helps, the worry creeps back soon after." if profile.relapse else ""]
    return " ".join(p for p in parts if p)


PUSHBACK_NOTE = "this time you misread or doubt what the listener just said, and push back on it"
