"""Signatures that grow the catalogs: a new persona or situation grounded on existing neighbours."""

from __future__ import annotations

import dspy

from synth_empathy.schema import AgeBand, CommunicationStyle, Domain, LifeStage, SupportPreference


class NewPersona(dspy.Signature):
    """Invent one new, realistic person who might seek emotional support, different from the example
    people shown (another age, place, job or temperament), but just as concrete. No real or famous people,
    no stereotypes. The bio is one or two sentences in the third person a role-player could act from."""

    neighbours: str = dspy.InputField(desc="existing people in the catalog")
    name: str = dspy.OutputField()
    age_band: AgeBand = dspy.OutputField()
    life_stage: LifeStage = dspy.OutputField()
    occupation: str = dspy.OutputField()
    region: str = dspy.OutputField(desc="city or area, country")
    communication_style: CommunicationStyle = dspy.OutputField()
    support_preference: SupportPreference = dspy.OutputField()
    emotional_baseline: str = dspy.OutputField(desc="a short phrase")
    bio: str = dspy.OutputField()


class NewSituation(dspy.Signature):
    """Write one new concrete situation a person could be going through, of the given problem type and
    evoking the given emotion, different from the example situations. One or two sentences that speak
    of the person as 'they'; concrete details, no names of real people. hidden_details are two short
    things the person would not say at first."""

    problem_type: str = dspy.InputField()
    emotion: str = dspy.InputField()
    neighbours: str = dspy.InputField(desc="existing situations of this kind")
    text: str = dspy.OutputField()
    domain: Domain = dspy.OutputField()
    intensity_low: int = dspy.OutputField(ge=0, le=10)
    intensity_high: int = dspy.OutputField(ge=0, le=10)
    hidden_details: list[str] = dspy.OutputField()
