"""Pydantic models for everything that is read from or written to disk."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AgeBand = Literal["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
LifeStage = Literal[
    "school_student",
    "university_student",
    "early_career",
    "mid_career",
    "late_career",
    "parent_young_children",
    "parent_teens",
    "caregiver",
    "between_jobs",
    "retired",
]
CommunicationStyle = Literal[
    "terse", "rambling", "guarded", "sarcastic", "direct", "formal", "humorous", "over_explainer"
]
SupportPreference = Literal["advice", "listening", "mixed"]
Domain = Literal[
    "work", "school", "family", "romance", "friendship", "health", "money", "loss",
    "community", "personal_growth", "home",
]

EMOTIONS = (
    "afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed", "caring",
    "confident", "content", "devastated", "disappointed", "disgusted", "embarrassed", "excited",
    "faithful", "furious", "grateful", "guilty", "hopeful", "impressed", "jealous", "joyful",
    "lonely", "nostalgic", "prepared", "proud", "sad", "sentimental", "surprised", "terrified",
    "trusting",
)

# ESConv's eight strategies, spelled as identifiers.
STRATEGIES = (
    "question",
    "restatement",
    "reflection_of_feelings",
    "self_disclosure",
    "affirmation",
    "suggestion",
    "information",
    "other",
)
Strategy = Literal[
    "question", "restatement", "reflection_of_feelings", "self_disclosure", "affirmation",
    "suggestion", "information", "other",
]

FAILURE_MECHANISMS = (
    "sentiment_attenuation",
    "granularity_mismatch",
    "conflict_avoidance",
    "linguistic_distancing",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- catalogs


class Trait(_Strict):
    id: str
    description: str


class Persona(_Strict):
    id: str
    name: str
    age_band: AgeBand
    life_stage: LifeStage
    occupation: str
    region: str
    communication_style: CommunicationStyle
    support_preference: SupportPreference
    emotional_baseline: str
    traits: list[str] = Field(default_factory=list)
    bio: str

    @model_validator(mode="after")
    def _life_stage_fits_age(self) -> Persona:
        if self.age_band not in LIFE_STAGE_AGES[self.life_stage]:
            raise ValueError(f"life stage {self.life_stage} does not fit age band {self.age_band}")
        return self


# Which age bands each life stage can plausibly have.
LIFE_STAGE_AGES: dict[str, tuple[str, ...]] = {
    "school_student": ("13-17",),
    "university_student": ("18-24", "25-34", "35-44"),
    "early_career": ("18-24", "25-34", "35-44"),
    "mid_career": ("25-34", "35-44", "45-54", "55-64"),
    "late_career": ("45-54", "55-64", "65+"),
    "parent_young_children": ("18-24", "25-34", "35-44", "45-54"),
    "parent_teens": ("35-44", "45-54", "55-64"),
    "caregiver": AGE_BANDS[1:],
    "between_jobs": ("18-24", "25-34", "35-44", "45-54", "55-64"),
    "retired": ("55-64", "65+"),
}


class Emotion(_Strict):
    id: str
    valence: Literal["positive", "negative", "mixed"]
    related: list[str] = Field(default_factory=list)


class ProblemType(_Strict):
    id: str
    label: str
    description: str


class Situation(_Strict):
    """A concrete thing that happened, linked to emotions and a problem type."""

    id: str
    text: str
    emotions: list[str] = Field(min_length=1)
    problem_type: str
    domain: Domain
    intensity: tuple[int, int] = (4, 8)
    hidden_details: list[str] = Field(default_factory=list)
    # Plausibility: empty means any persona fits.
    age_bands: list[AgeBand] = Field(default_factory=list)
    life_stages: list[LifeStage] = Field(default_factory=list)
    source: str | None = None  # the id of the imported Source it came from; None: written for the catalog

    @model_validator(mode="after")
    def _intensity_in_range(self) -> Situation:
        low, high = self.intensity
        if not 0 <= low <= high <= 10:
            raise ValueError(f"intensity must be two numbers 0 <= low <= high <= 10, got {list(self.intensity)}")
        return self


class Source(_Strict):
    """An imported dataset that catalog situations came from, with the licence its user declared for it."""

    id: str
    file: str
    format: str
    dataset: str
    license: str = "unknown"
    imported: str = ""


# ---------------------------------------------------------------- generation

RESISTANCE_LEVELS = ("low", "medium", "high")
DISCLOSURE_PACES = ("open", "gradual", "guarded")
PUSHBACK_LEVELS = ("rare", "sometimes", "often")


class SeekerProfile(_Strict):
    """How hard the seeker is to help, sampled per seed: simulated seekers left alone are overly cooperative and
    hide supporter failures (arXiv 2601.07698). What each level does is in programs/seeker_profile.py."""

    resistance: Literal["low", "medium", "high"]  # how far one good reply can lower the hidden intensity
    disclosure: Literal["open", "gradual", "guarded"]  # how fast the hidden details come out
    pushback: Literal["rare", "sometimes", "often"]  # how often the seeker misreads a reply or pushes back on it
    relapse: bool  # the relief of a good reply wears off by the next one


class Seed(_Strict):
    """Everything one dialogue starts from; its id is derived from the content."""

    id: str
    index: int
    persona: Persona
    situation: Situation
    emotion: str
    problem_type: str
    intensity: int = Field(ge=0, le=10)
    source: str = "catalog"
    language: str = "en"  # ISO 639-1: what the seeker and supporter speak (synth_empathy.languages)
    profile: SeekerProfile | None = None  # None: the cooperative seeker of corpora made before profiles


class Critique(_Strict):
    er: int = Field(ge=0, le=2)
    ip: int = Field(ge=0, le=2)
    ex: int = Field(ge=0, le=2)
    failures: list[str] = Field(default_factory=list)
    feedback: str = ""


class Draft(_Strict):
    """One round of self-critique: the text that was critiqued and what the critique said."""

    text: str
    critique: Critique


class Turn(_Strict):
    role: Literal["seeker", "supporter"]
    text: str
    strategy: Strategy | None = None
    intensity: int | None = Field(default=None, ge=0, le=10)
    revised: bool = False
    drafts: list[Draft] = Field(default_factory=list)
    crisis: bool = False

    @model_validator(mode="after")
    def _supporter_has_strategy(self) -> Turn:
        if self.role == "supporter" and self.strategy is None:
            raise ValueError("a supporter turn needs a strategy")
        return self


class Scores(_Strict):
    sensibility: float = Field(ge=0, le=10)
    rationality: float = Field(ge=0, le=10)
    er: float = Field(ge=0, le=2)
    ip: float = Field(ge=0, le=2)
    ex: float = Field(ge=0, le=2)
    failures: dict[str, bool] = Field(default_factory=dict)
    rationale: str = ""
    samples: int = 1
    spread: dict[str, float] | None = None  # max - min over the judge's samples (k > 1): where it hesitated


class Provenance(_Strict):
    generator_model: str
    judge_model: str | None = None
    program_versions: dict[str, str] = Field(default_factory=dict)
    config_fingerprint: str
    created: str
    package_version: str


class Dialogue(_Strict):
    id: str
    seed: Seed
    turns: list[Turn]
    ending: str
    crisis: bool = False
    scores: Scores | None = None
    provenance: Provenance


class Rejection(_Strict):
    """A seed that did not end as a kept dialogue; the dialogue is kept when there is one."""

    id: str
    stage: Literal["generate", "rules", "custom", "dedup", "judge", "decontaminate"]
    reasons: list[str] = Field(min_length=1)
    detail: str = ""
    seed: Seed | None = None
    dialogue: Dialogue | None = None


class StageUsage(BaseModel):
    calls: int = 0
    input_tokens: int = 0  # every prompt token, the cached ones included
    cached_input_tokens: int = 0  # of those, read from the provider's prompt cache (billed at `cached_input`)
    output_tokens: int = 0
    retries: int = 0
    p50_s: float | None = None  # latency of one LM call as the dialogue waited for it, retries included
    p95_s: float | None = None
    cost_usd: float | None = None  # None: no price set for the model, so unknown

    @computed_field
    @property
    def cached_share(self) -> float | None:
        """The share of input tokens that came from the prompt cache; None before any input."""
        return round(self.cached_input_tokens / self.input_tokens, 4) if self.input_tokens else None


class Manifest(BaseModel):
    package_version: str
    config: dict
    config_fingerprint: str
    versions: dict[str, str]
    models: dict[str, str | None]
    # How each role's structured answers reached its model: grammar, json_schema, json_object_schema, json_object
    # or prompt (see synth_empathy.lm.structured); empty in manifests written before it was recorded.
    structured_output: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int]
    rejection_reasons: dict[str, int]
    usage: dict[str, StageUsage]
    timings: dict[str, float]
    created: str
    finished: str | None = None
    cost_usd: float | None = None  # None unless every stage that made calls has a price
    tokens_per_kept: float | None = None
    human_agreement: dict | None = None  # judge vs human labels, as `synth-empathy calibrate` computed it
    judge_caveat: str | None = None  # why the judge's scores are no evidence of quality (embedded or self-judge)
    budget: dict | None = None  # under --max-cost: {max_cost_usd, spent_usd, stopped}
    # The in-process llama.cpp engine, per model file, since it was loaded: prefix cache hits, batch sizes.
    local_engine: dict[str, dict] | None = None
    # The imported datasets the plan's situations came from, with their licences (graph import --license).
    sources: list[Source] = Field(default_factory=list)
    pii: dict | None = None  # the personal-data report of the kept dialogues (synth_empathy.filters.pii)
    decontamination: dict | None = None  # `decontaminate`: {checked: files, ngram, threshold; found: counts}


# ---------------------------------------------------------------- human review (DIR/labels.jsonl)


class Ratings(_Strict):
    """A reviewer's ratings; a rating left out (None) was not given."""

    sensibility: int | None = Field(default=None, ge=0, le=10)
    rationality: int | None = Field(default=None, ge=0, le=10)
    er: int | None = Field(default=None, ge=0, le=2)
    ip: int | None = Field(default=None, ge=0, le=2)
    ex: int | None = Field(default=None, ge=0, le=2)
    failures: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_failures(self) -> Ratings:
        unknown = sorted(set(self.failures) - set(FAILURE_MECHANISMS))
        if unknown:
            raise ValueError(f"unknown failure flag {unknown[0]} (known: {', '.join(FAILURE_MECHANISMS)})")
        return self


class TurnEdit(_Strict):
    """A supporter turn a reviewer rewrote: its index in `turns`, the text it had, the reviewer's text."""

    index: int = Field(ge=0)
    original: str
    text: str = Field(min_length=1)


class Label(_Strict):
    """One line of DIR/labels.jsonl: one reviewer's verdict on one dialogue at one time."""

    dialogue_id: str = Field(min_length=1)
    reviewer: str = Field(min_length=1)
    time: str
    ratings: Ratings = Field(default_factory=Ratings)
    keep: bool
    edits: list[TurnEdit] = Field(default_factory=list)
    note: str = ""
