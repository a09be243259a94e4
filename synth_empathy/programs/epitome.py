"""The empathy rubric the critique and the judge share: EPITOME's three mechanisms and four failure flags.

`with_rubric` adds the seven output fields to a signature, after its own: what a signature asks first
(the critique's feedback, the judge's rationale) is written before the levels. (A shared base class would
put the inherited fields first.)
"""

from __future__ import annotations

from typing import Literal

import dspy

from synth_empathy.schema import FAILURE_MECHANISMS

Level = Literal[0, 1, 2]

# EPITOME's mechanisms as Scores/Critique spell them (er, ip, ex), and the output field scoring each.
MECHANISMS = {"er": "emotional_reactions", "ip": "interpretations", "ex": "explorations"}

RUBRIC = """EPITOME levels (0 none, 1 weak, 2 strong): emotional_reactions = expresses warmth, compassion,
concern; interpretations = shows it understood the seeker's specific feelings and experience;
explorations = gently asks about what the seeker has not said yet.
Failure flags (true when present): sentiment_attenuation = plays down or flattens the seeker's
feelings; granularity_mismatch = generic where the seeker gave specifics, or too detailed too
soon; conflict_avoidance = dodges something that honestly needs saying; linguistic_distancing =
clinical, impersonal or textbook register instead of speaking person to person."""


RUBRIC_OUTPUTS: dict[str, type] = {
    "emotional_reactions": Level, "interpretations": Level, "explorations": Level,
    **dict.fromkeys(FAILURE_MECHANISMS, bool),
}


def with_rubric(signature: type[dspy.Signature]) -> type[dspy.Signature]:
    """`signature` (same name and instructions) with the rubric's outputs after its own fields."""
    fields = {name: (field.annotation, field) for name, field in signature.model_fields.items()}
    fields.update({name: (kind, dspy.OutputField()) for name, kind in RUBRIC_OUTPUTS.items()})
    out = dspy.make_signature(fields, signature.instructions, signature_name=signature.__name__)
    out.__module__, out.__qualname__ = signature.__module__, signature.__qualname__
    return out


def levels(prediction) -> dict[str, int]:
    """{"er": .., "ip": .., "ex": ..} of a prediction of a `with_rubric` signature."""
    return {short: int(getattr(prediction, name)) for short, name in MECHANISMS.items()}


def failures(prediction) -> list[str]:
    """The failure flags a prediction raises, in FAILURE_MECHANISMS order."""
    return [name for name in FAILURE_MECHANISMS if getattr(prediction, name)]
