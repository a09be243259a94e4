"""The empathy judge: Efficient-Empathy sensibility and rationality, EPITOME levels, failure flags."""

from __future__ import annotations

from typing import Literal

import dspy

from synth_empathy.lm.usage import stage
from synth_empathy.schema import FAILURE_MECHANISMS

Level = Literal[0, 1, 2]


class JudgeDialogue(dspy.Signature):
    """You are a demanding judge of emotional-support conversations. Judge only the Supporter.
    sensibility (0-10): emotional depth; does the supporter notice, name and honour the seeker's
    feelings at their true strength? rationality (0-10): is the supporter's reasoning sound,
    specific to this situation and actually helpful, with no empty platitudes or wrong advice?
    EPITOME levels (0 none, 1 weak, 2 strong): emotional_reactions, interpretations, explorations.
    Failure flags, true when present anywhere: sentiment_attenuation (feelings played down),
    granularity_mismatch (generic replies to specific disclosures, or the reverse),
    conflict_avoidance (dodging what needed saying), linguistic_distancing (clinical, impersonal).
    Most conversations deserve middling scores; give 8 or more only to excellent support."""

    conversation: str = dspy.InputField()
    rationale: str = dspy.OutputField(desc="two sentences on the supporter's strengths and weaknesses")
    sensibility: int = dspy.OutputField(ge=0, le=10)
    rationality: int = dspy.OutputField(ge=0, le=10)
    emotional_reactions: Level = dspy.OutputField()
    interpretations: Level = dspy.OutputField()
    explorations: Level = dspy.OutputField()
    sentiment_attenuation: bool = dspy.OutputField()
    granularity_mismatch: bool = dspy.OutputField()
    conflict_avoidance: bool = dspy.OutputField()
    linguistic_distancing: bool = dspy.OutputField()


class Judge(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.score = dspy.Predict(JudgeDialogue)

    def forward(self, conversation: str) -> dspy.Prediction:
        with stage("judge"):
            return self.score(conversation=conversation)


__all__ = ["FAILURE_MECHANISMS", "Judge", "JudgeDialogue"]
