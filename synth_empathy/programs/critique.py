"""Self-critique against the empathy rubric, and revision of a draft that fails it."""

from __future__ import annotations

import dspy

from synth_empathy.languages import DEFAULT_LANGUAGE
from synth_empathy.lm.usage import stage
from synth_empathy.programs.epitome import RUBRIC, failures, levels, with_rubric
from synth_empathy.programs.transcript import write_in
from synth_empathy.schema import Critique


@with_rubric
class CritiqueReply(dspy.Signature):
    __doc__ = f"""Critique a supporter's reply in an emotional-support conversation, strictly.
{RUBRIC}
feedback = the single most important fix, in one sentence."""

    conversation: str = dspy.InputField()
    reply: str = dspy.InputField(desc="the supporter's draft reply")
    feedback: str = dspy.OutputField()


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
        return Critique(**levels(out), failures=failures(out), feedback=out.feedback)

    def revise(self, conversation: str, strategy: str, draft: str, critique: Critique,
               language: str = DEFAULT_LANGUAGE) -> str:
        # The language rides on the critique, so an English run's revise prompt stays as it was.
        critique_text = " ".join(part for part in (describe(critique), write_in(language)) if part)
        with stage("revise"):
            return self.rewrite(conversation=conversation, strategy=strategy, draft=draft,
                                critique=critique_text).reply
