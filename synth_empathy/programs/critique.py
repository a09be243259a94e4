"""Self-critique against the empathy rubric, and revision of a draft that fails it."""

from __future__ import annotations

from typing import Literal

import dspy

from synth_empathy.lm.usage import stage
from synth_empathy.schema import FAILURE_MECHANISMS, Critique

Level = Literal[0, 1, 2]


class CritiqueReply(dspy.Signature):
    """Critique a supporter's reply in an emotional-support conversation, strictly.
    EPITOME levels (0 none, 1 weak, 2 strong): emotional_reactions = expresses warmth, compassion,
    concern; interpretations = shows it understood the seeker's specific feelings and experience;
    explorations = gently asks about what the seeker has not said yet.
    Failure flags (true when present): sentiment_attenuation = plays down or flattens the seeker's
    feelings; granularity_mismatch = generic where the seeker gave specifics, or too detailed too
    soon; conflict_avoidance = dodges something that honestly needs saying; linguistic_distancing =
    clinical, impersonal or textbook register instead of speaking person to person.
    feedback = the single most important fix, in one sentence."""

    conversation: str = dspy.InputField()
    reply: str = dspy.InputField(desc="the supporter's draft reply")
    feedback: str = dspy.OutputField()
    emotional_reactions: Level = dspy.OutputField()
    interpretations: Level = dspy.OutputField()
    explorations: Level = dspy.OutputField()
    sentiment_attenuation: bool = dspy.OutputField()
    granularity_mismatch: bool = dspy.OutputField()
    conflict_avoidance: bool = dspy.OutputField()
    linguistic_distancing: bool = dspy.OutputField()


class ReviseReply(dspy.Signature):
    """Rewrite the supporter's draft reply so it fixes the critique. Keep what was good, keep the
    strategy, stay one to three sentences, speak warmly and personally to the seeker about the
    specifics they shared, and match the strength of their feelings. Write only the new reply."""

    conversation: str = dspy.InputField()
    strategy: str = dspy.InputField()
    draft: str = dspy.InputField()
    critique: str = dspy.InputField()
    reply: str = dspy.OutputField(desc="the revised reply")


def needs_revision(critique: Critique) -> bool:
    """Revise when any failure mechanism is present or the reply shows no empathy at all."""
    return bool(critique.failures) or critique.er + critique.ip + critique.ex == 0


def describe(critique: Critique) -> str:
    problems = ", ".join(f.replace("_", " ") for f in critique.failures) or "none flagged"
    return f"{critique.feedback} (problems: {problems})"


def usable_revision(revision: str, draft: str, critique: Critique) -> bool:
    """Small models sometimes echo the critique or talk about the text instead of rewriting it."""
    lowered = revision.lower()
    echoes = "(problems:" in lowered or critique.feedback.strip().lower() in lowered
    meta = any(w in lowered for w in ("the draft", "the reply", "revised reply", "this reply", "critique"))
    return bool(revision.strip()) and not echoes and not meta and revision.strip() != draft.strip()


class Critic(dspy.Module):
    """Scores a draft against the rubric; `revise` rewrites it from the critique."""

    def __init__(self) -> None:
        super().__init__()
        self.critique = dspy.Predict(CritiqueReply)
        self.rewrite = dspy.Predict(ReviseReply)

    def forward(self, conversation: str, reply: str) -> Critique:
        with stage("critique"):
            out = self.critique(conversation=conversation, reply=reply)
        return Critique(
            er=out.emotional_reactions, ip=out.interpretations, ex=out.explorations,
            failures=[name for name in FAILURE_MECHANISMS if getattr(out, name)],
            feedback=out.feedback,
        )

    def revise(self, conversation: str, strategy: str, draft: str, critique: Critique) -> str:
        with stage("revise"):
            return self.rewrite(conversation=conversation, strategy=strategy, draft=draft,
                                critique=describe(critique)).reply
