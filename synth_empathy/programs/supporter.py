"""The supporter: choose an ESConv strategy, draft, self-critique against the rubric, revise."""

from __future__ import annotations

import dspy

from synth_empathy.languages import DEFAULT_LANGUAGE
from synth_empathy.lm.usage import stage
from synth_empathy.programs.critique import Critic, needs_revision, usable_revision
from synth_empathy.programs.safety import SAFETY_GUIDANCE, make_safe
from synth_empathy.programs.transcript import write_in
from synth_empathy.schema import Draft, Strategy


class ChooseStrategy(dspy.Signature):
    """You are a skilled emotional-support listener. Choose the support strategy for your next reply:
    question (an open question to understand more), restatement (paraphrase what they said),
    reflection_of_feelings (name the feelings you hear), self_disclosure (a brief similar experience
    of your own), affirmation (affirm their strengths, reassure), suggestion (a concrete idea, only
    once you understand the situation), information (useful facts), other. Early on, explore and
    reflect; suggest only later and only if the person wants advice."""

    seeker: str = dspy.InputField(desc="who you are talking to")
    conversation: str = dspy.InputField()
    strategy: Strategy = dspy.OutputField()


class DraftReply(dspy.Signature):
    """You are a warm, emotionally intelligent friend supporting someone. Write your next reply to
    them: one to three sentences, using the given strategy. Match the strength of their feelings
    instead of playing them down, refer to the specific things they told you, say honestly what
    needs saying, and talk person to person (I, you), never like a textbook. Write only the reply."""

    seeker: str = dspy.InputField(desc="who you are talking to")
    conversation: str = dspy.InputField()
    strategy: str = dspy.InputField()
    guidance: str = dspy.InputField(desc="extra guidance for this reply, if any")
    reply: str = dspy.OutputField()


class Supporter(dspy.Module):
    """Strategy, draft, then up to `rounds` critique-and-revise passes.

    Example:
        >>> supporter = Supporter(rounds=1)
        >>> out = supporter(seeker="Ana, 25-34, nurse", conversation="Seeker: I lost my job today.")
        >>> out.reply, out.strategy, out.drafts  # drafts hold each critiqued text and its critique
    """

    def __init__(self, rounds: int = 1) -> None:
        super().__init__()
        self.rounds = rounds
        self.choose = dspy.Predict(ChooseStrategy)
        self.draft = dspy.Predict(DraftReply)
        self.critic = Critic()

    def forward(self, seeker: str, conversation: str, crisis: bool = False,
                language: str = DEFAULT_LANGUAGE) -> dspy.Prediction:
        with stage("supporter"):
            strategy = self.choose(seeker=seeker, conversation=conversation).strategy
            guidance = " ".join(g for g in (write_in(language), SAFETY_GUIDANCE if crisis else "") if g)
            reply = self.draft(seeker=seeker, conversation=conversation, strategy=strategy.replace("_", " "),
                               guidance=guidance).reply
        drafts: list[Draft] = []
        for _ in range(self.rounds):
            critique = self.critic(conversation=conversation, reply=reply)
            drafts.append(Draft(text=reply, critique=critique))
            if not needs_revision(critique):
                break
            revision = self.critic.revise(conversation=conversation, strategy=strategy.replace("_", " "),
                                          draft=reply, critique=critique, language=language)
            if not usable_revision(revision, reply, critique):
                break
            reply = revision
        if crisis:
            reply = make_safe(reply)
        revised = bool(drafts) and reply != drafts[0].text
        return dspy.Prediction(reply=reply, strategy=strategy, drafts=drafts, revised=revised)
