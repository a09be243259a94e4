"""Small valid schema objects for tests."""

from __future__ import annotations

from synth_empathy.schema import Dialogue, Persona, Provenance, Scores, Seed, Situation, Turn

GOOD_TEXTS = [
    "I lost my job at the warehouse and I can't stop replaying the call.",
    "That sounds like a real shock. What has been the hardest part since then?",
    "Telling my sister, she lent me money last month for the deposit.",
    "So it is the job and facing your sister too. That is a lot to carry right now.",
]

PERSONA = Persona(id="t01", name="Ana", age_band="25-34", life_stage="early_career", occupation="picker",
                  region="Porto", communication_style="guarded", support_preference="listening",
                  emotional_baseline="steady", bio="Ana works nights.")


def make_seed(ident: str = "d1", emotion: str = "anxious", problem: str = "job_crisis",
              situation_id: str = "s01") -> Seed:
    situation = Situation(id=situation_id, text="Got laid off.", emotions=[emotion], problem_type=problem,
                          domain="work")
    return Seed(id=ident, index=0, persona=PERSONA, situation=situation, emotion=emotion, problem_type=problem,
                intensity=6)


def make_dialogue(texts: list[str], ident: str = "d1", scores: Scores | None = None, crisis: bool = False,
                  **seed_kw) -> Dialogue:
    turns = [
        Turn(role="seeker", text=t, intensity=5, crisis=crisis) if i % 2 == 0
        else Turn(role="supporter", text=t, strategy="question", crisis=crisis)
        for i, t in enumerate(texts)
    ]
    return Dialogue(id=ident, seed=make_seed(ident, **seed_kw), turns=turns, ending="max_turns", crisis=crisis,
                    scores=scores, provenance=Provenance(generator_model="test", config_fingerprint="f",
                                                         created="2026-01-01T00:00:00Z", package_version="0"))


def scores(sensibility: float, rationality: float) -> Scores:
    return Scores(sensibility=sensibility, rationality=rationality, er=1, ip=1, ex=1)
