"""The empathy judge: Efficient-Empathy sensibility and rationality, EPITOME levels, failure flags."""

from __future__ import annotations

import dspy

from synth_empathy.lm.usage import stage
from synth_empathy.programs.epitome import RUBRIC, with_rubric


@with_rubric
class JudgeDialogue(dspy.Signature):
    __doc__ = f"""You are a demanding judge of emotional-support conversations. Judge only the Supporter.
sensibility (0-10): emotional depth; does the supporter notice, name and honour the seeker's
feelings at their true strength? rationality (0-10): is the supporter's reasoning sound,
specific to this situation and actually helpful, with no empty platitudes or wrong advice?
{RUBRIC} Failure flags count when present anywhere in the conversation.
Most conversations deserve middling scores; give 8 or more only to excellent support."""

    conversation: str = dspy.InputField()
    rationale: str = dspy.OutputField(desc="two sentences on the supporter's strengths and weaknesses")
    sensibility: int = dspy.OutputField(ge=0, le=10)
    rationality: int = dspy.OutputField(ge=0, le=10)


class Judge(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.score = dspy.Predict(JudgeDialogue)

    def forward(self, conversation: str) -> dspy.Prediction:
        with stage("judge"):
            return self.score(conversation=conversation)


__all__ = ["Judge", "JudgeDialogue"]
