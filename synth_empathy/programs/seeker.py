"""The help-seeker: plays a persona with a hidden state and discloses gradually."""

from __future__ import annotations

import dspy

from synth_empathy.lm.usage import stage


class SeekerMessage(dspy.Signature):
    """You are role-playing a real person talking to a friend who is listening. Stay in character.
    Write only your next message: one to three short sentences, first person, everyday words, in your
    own way of speaking. Share feelings honestly but gradually: at first say only what happened in
    broad strokes; reveal the things you have not said yet only when the listener asks or earns it.
    You may be guarded, push back, or misread the listener. Do not thank the listener unless they
    truly helped. Never give the listener advice and never talk about yourself in the third person."""

    character: str = dspy.InputField(desc="who you are")
    situation: str = dspy.InputField(desc="what happened to you")
    # The conversation grows turn by turn and comes before what changes every turn (feeling, secrets), so each
    # turn's prompt starts with the previous turn's and a local engine evaluates only the new part.
    conversation: str = dspy.InputField(desc="the conversation so far; empty when you speak first")
    feeling: str = dspy.InputField(desc="how you feel right now")
    not_said_yet: str = dspy.InputField(desc="things you have not told the listener yet")
    message: str = dspy.OutputField(desc="your next message")


class SeekerFeeling(dspy.Signature):
    """Judge how a person seeking support feels after the listener's latest reply.
    intensity is 0 (calm) to 10 (overwhelmed): it drops when the reply understood them and rises
    when they felt dismissed, rushed or lectured. wants_to_end is true only when the person has
    said what they needed to and would now close the conversation."""

    emotion: str = dspy.InputField()
    previous_intensity: int = dspy.InputField()
    seeker_message: str = dspy.InputField()
    listener_reply: str = dspy.InputField()
    intensity: int = dspy.OutputField(ge=0, le=10)
    wants_to_end: bool = dspy.OutputField()


class Seeker(dspy.Module):
    """Speaks as the persona, then updates its hidden intensity after each listener reply."""

    def __init__(self) -> None:
        super().__init__()
        self.speak = dspy.Predict(SeekerMessage)
        self.feel = dspy.Predict(SeekerFeeling)

    def forward(self, character: str, situation: str, feeling: str, not_said_yet: str,
                conversation: str) -> dspy.Prediction:
        with stage("seeker"):
            return self.speak(character=character, situation=situation, feeling=feeling,
                              not_said_yet=not_said_yet, conversation=conversation)

    def react(self, emotion: str, previous_intensity: int, seeker_message: str,
              listener_reply: str) -> dspy.Prediction:
        with stage("seeker"):
            return self.feel(emotion=emotion, previous_intensity=previous_intensity,
                             seeker_message=seeker_message, listener_reply=listener_reply)
