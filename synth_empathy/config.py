"""One validated RunConfig, loaded from a TOML/YAML file and CLI flags."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synth_empathy.errors import UserError
from synth_empathy.languages import DEFAULT_LANGUAGE, LANGUAGES, language_mix
from synth_empathy.redact import redact_data
from synth_empathy.userfiles import read_text

PACKAGE_ROOT = Path(__file__).resolve().parent


def shipped_catalog_dir(name: str) -> Path:
    """Shipped catalogs: the repo's top-level folder, or the copy inside an installed wheel."""
    in_repo = PACKAGE_ROOT.parent / name
    return in_repo if in_repo.is_dir() else PACKAGE_ROOT / "catalog" / name


# The most dialogues one run plans: a bound that catches a typo (-n 1000000000000) before it costs memory.
MAX_N = 10_000_000
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Section(BaseModel):
    # inf and nan are never a setting (a timeout of inf never times out; nan compares false with every bound).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Backend = Literal["local", "openai", "litellm"]
StructuredOutput = Literal["auto", "json_schema", "json_object_schema", "json_object", "prompt"]


class ModelConfig(_Section):
    """Which model answers. `local` runs a GGUF in process; `openai` any compatible endpoint; `litellm` any
    provider LiteLLM knows, named in the model (`anthropic/...`, `bedrock/...`, `groq/...`, `ollama_chat/...`)."""

    backend: Backend = "local"
    model: str | None = None  # GGUF path (local), model name (openai) or provider/model (litellm); None = embedded
    api_base: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # litellm: only when set explicitly; else LiteLLM reads the provider's own
    # How a JSON schema is sent: "auto" starts at json_schema and steps down on the first refusal naming
    # response_format (json_object_schema, json_object, prompt); any other value forces that mode.
    structured_output: StructuredOutput = "auto"
    temperature: float = Field(default=0.6, ge=0, le=2)
    max_tokens: int = Field(default=120, ge=16, le=8192)
    timeout_s: float = Field(default=60.0, gt=0)  # per attempt: no byte for this long and the attempt is retried
    retries: int = Field(default=3, ge=0, le=20)  # per call, after a 5xx, timeout, connection error or malformed body
    rate_limit_retries: int = Field(default=8, ge=0, le=100)  # per call, after a 429: the server pacing us, not failing
    backoff_s: float = Field(default=0.5, ge=0, le=60)  # first retry waits up to this (full jitter), doubling each time
    n_ctx: int = Field(default=4096, ge=512)
    # local backend: let llama.cpp repack weights into its extra buffer types (AMX, AVX repacks of Q4_0/Q8_0/IQ4_NL).
    # Faster prompt processing for such GGUFs; off because an AMX that a VM advertises but does not enable crashes.
    repack: bool = False
    # local backend: run a Q8_0 copy of the model (made once, cached; see lm/requantize.py), whose prompts
    # llama.cpp processes about 2.4x faster than Q4_1's. None: "q8_0" for the embedded model, "off" for your own.
    requantize: Literal["q8_0", "off"] | None = None
    threads: int | None = Field(default=None, ge=1, le=512)  # local backend: llama.cpp threads; None = one per CPU

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            # Never echo the value: it is often the key itself, pasted where its variable's name belongs.
            raise ValueError("must be the name of an environment variable (letters, digits and _), "
                             "not the key itself")
        return value


class Price(_Section):
    """What a model costs, in USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # a cached prompt prefix; None = billed as input
    batch_discount: float = Field(default=0.5, ge=0, le=1)  # off every rate through the Batch API (OpenAI: 50%)


class JudgeConfig(_Section):
    """The judge: its own model when named (a fairer judge), else the generator's."""

    backend: Backend | None = None
    model: str | None = None
    samples: int = Field(default=1, ge=1, le=10)
    min_sensibility: float = Field(default=6.0, ge=0, le=10)
    min_rationality: float = Field(default=6.0, ge=0, le=10)
    temperature: float = Field(default=0.3, ge=0, le=2)


class DialogueConfig(_Section):
    min_turns: int = Field(default=2, ge=1, le=20)  # seeker+supporter exchanges
    max_turns: int = Field(default=3, ge=1, le=20)
    critique_rounds: int = Field(default=1, ge=0, le=5)
    keep_drafts: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> DialogueConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is larger than max_turns ({self.max_turns})")
        return self


class DedupConfig(_Section):
    enabled: bool = True
    threshold: float = Field(default=0.8, gt=0, le=1)
    num_perm: int = Field(default=128, ge=16, le=1024)
    ngram: int = Field(default=3, ge=1, le=10)
    scope: Literal["dialogue", "supporter"] = "dialogue"
    # After MinHash, paraphrases by embedding cosine (the `semantic` extra; `filter` and `dedup`, not `generate`).
    semantic: bool = False
    semantic_threshold: float = Field(default=0.85, gt=0, le=1)  # see "Semantic dedup" in BENCHMARKS.md


RuleName = Literal["turn_count", "turn_length", "truncated", "roles", "repetition", "role_leakage", "placeholders",
                   "language", "crisis_safety"]


class RulesConfig(_Section):
    enabled: bool = True
    disabled: list[RuleName] = Field(default_factory=list)
    min_turns: int = Field(default=2, ge=1)
    max_turns: int = Field(default=60, ge=1)
    min_words_per_turn: int = Field(default=1, ge=0)
    max_words_per_turn: int = Field(default=250, ge=1)
    repetition_ngram: int = Field(default=4, ge=2)
    max_repeated_fraction: float = Field(default=0.8, gt=0, le=1)
    min_english_share: float = Field(default=0.2, ge=0, le=1)  # function words of the dialogue's language
    min_script_share: float = Field(default=0.5, ge=0, le=1)  # zh/ja/ko: letters in the language's script


class RayConfig(_Section):
    """Where and how wide `engine = "ray"` runs; `concurrency` is then per worker (dialogues in flight in each)."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001", ...); None = a local instance
    workers: int | None = Field(default=None, ge=1)  # generation actors; None = one per CPU of the cluster
    batch_size: int | None = Field(default=None, ge=1)  # seeds per actor call; None = 2 x concurrency


class RunOptions(_Section):
    """How a run treats failures and memory (a resume may change them), and the language it is written in."""

    # A seed whose generation failed (endpoint down, retries spent) is tried again on resume, this many times in all.
    max_attempts: int = Field(default=3, ge=1, le=100)
    # DSPy's per-call LM history (dspy.inspect_history) and trace hold every prompt, response and prediction, up
    # to 10,000 each: memory that grows with n, so they are off unless asked for.
    lm_history: bool = False
    # What the seeker and supporter speak: an ISO 639-1 code, or {code = weight} for a mixed run whose seeds take
    # the languages in turn (synth_empathy.languages). Part of the fingerprint: it changes every dialogue.
    language: str | dict[str, float] = DEFAULT_LANGUAGE

    @field_validator("language")
    @classmethod
    def _known_languages(cls, value: str | dict[str, float]) -> str | dict[str, float]:
        mix = language_mix(value)
        if not mix:
            raise ValueError("must name at least one language")
        for code, weight in mix:
            if code not in LANGUAGES:
                raise ValueError(f"'{code}' is not a supported language ({', '.join(LANGUAGES)})")
            if not weight > 0:
                raise ValueError(f"the weight of {code} must be above 0, not {weight:g}")
        return value


# Settings that change how a run goes, not what it writes: a resume may change them.
_RUNTIME_ONLY: dict[str, Any] = {
    "n": True, "concurrency": True, "prices": True, "engine": True, "ray": True,
    "run": {"max_attempts", "lm_history"},
    "model": {"api_key_env", "timeout_s", "retries", "rate_limit_retries", "backoff_s", "repack", "requantize",
              "threads", "structured_output"},
}


# Settings added after runs were first fingerprinted: left out of the fingerprint at their default, so a run made
# before they existed keeps its fingerprint and still resumes.
_ADDED_LATER: dict[str, dict[str, Any]] = {
    "run": {"language": DEFAULT_LANGUAGE},
    "dedup": {"semantic": False, "semantic_threshold": 0.85},
    "rules": {"min_script_share": 0.5},
    "sampler": {"split": "all"},
}


class SamplerConfig(_Section):
    """Weights per emotion / problem type (default 1). A cell's weight is the product of its emotion's and
    problem type's: 0 leaves the cell out, 2 visits it twice per round of the plan."""

    emotion_weights: dict[str, float] = Field(default_factory=dict)
    problem_type_weights: dict[str, float] = Field(default_factory=dict)
    # "train": draw only the situations `eval` does not play (graphs/split.py), for a corpus to train on.
    split: Literal["all", "train"] = "all"

    @model_validator(mode="after")
    def _non_negative(self) -> SamplerConfig:
        for name, weights in (("emotion_weights", self.emotion_weights),
                              ("problem_type_weights", self.problem_type_weights)):
            bad = [k for k, w in weights.items() if w < 0]
            if bad:
                raise ValueError(f"{name}: weight of {bad[0]} is negative")
        return self


# Dialogues in flight on the local engine by default: their calls are decoded together (one batch reads the
# weights once for all), see lm/batching.py and BENCHMARKS.md. An endpoint's default stays one.
LOCAL_CONCURRENCY = 4


class RunConfig(_Section):
    n: int = Field(default=3, ge=1, le=MAX_N, strict=True)
    seed: int = 0
    concurrency: int = Field(default=1, ge=1, le=256)
    personas_dir: Path = Field(default_factory=lambda: shipped_catalog_dir("personas"))
    scenarios_dir: Path = Field(default_factory=lambda: shipped_catalog_dir("scenarios"))
    model: ModelConfig = Field(default_factory=ModelConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    dialogue: DialogueConfig = Field(default_factory=DialogueConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    programs_dir: Path | None = None
    license: str = "CC-BY-4.0"
    # Keyed by model name as configured (or its label, e.g. "local:x.gguf"); empty = cost unknown, never guessed.
    prices: dict[str, Price] = Field(default_factory=dict)
    engine: Literal["local", "ray"] = "local"  # threads here, or actors on Ray (run.ray_engine)
    ray: RayConfig = Field(default_factory=RayConfig)
    run: RunOptions = Field(default_factory=RunOptions)

    @model_validator(mode="after")
    def _local_concurrency(self) -> RunConfig:
        if "concurrency" not in self.model_fields_set and self.model.backend == "local" and self.engine == "local":
            self.concurrency = LOCAL_CONCURRENCY
        return self

    def fingerprint(self) -> str:
        """What decides the plan and the dialogues; runtime knobs (n, concurrency, retries...) may change on resume."""
        data = self.model_dump(mode="json", exclude=_RUNTIME_ONLY)
        for section, defaults in _ADDED_LATER.items():
            for key, default in defaults.items():
                if data[section].get(key) == default:
                    del data[section][key]
            if not data[section]:
                del data[section]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def judge_model(self) -> ModelConfig:
        """The judge's model: its own when named, else the generator's, at the judge's temperature."""
        update: dict[str, Any] = {"temperature": self.judge.temperature,
                                  "max_tokens": max(self.model.max_tokens, 200)}
        if self.judge.backend:
            update["backend"] = self.judge.backend
        if self.judge.model:
            update["model"] = self.judge.model
        return self.model.model_copy(update=update)

    def public_dict(self) -> dict[str, Any]:
        # Keys are only ever named by their environment variable; a URL may still carry one (user:KEY@host).
        return redact_data(self.model_dump(mode="json"))


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    text = read_text(path)
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"config file {path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a table of settings, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> RunConfig:
    """Build the RunConfig from an optional file, then flags (flags win); one error sentence on bad input.

    `flags` maps a command-line flag to the setting it sets ({"--backend": "model.backend"}), so a bad value
    given by a flag is reported by the flag ("--backend must be 'local' or 'openai', not 'azure'").
    """
    data = _read_file(path) if path else {}
    data = _merge(data, overrides or {})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        flag = next((f for f, setting in (flags or {}).items() if setting == where and _given(overrides, where)), None)
        if flag:
            rule = err["msg"].replace("Input should be", "must be").removeprefix("Value error, ")
            # A validator's own sentence says what was wrong; echoing the value could print a pasted secret.
            shown = "" if err["type"] == "value_error" else f", not {err['input']!r}"
            raise UserError(f"{flag} {rule}{shown}") from exc
        source = f" in {path}" if path else ""
        raise UserError(f"invalid setting {where}{source}: {err['msg']}") from exc


def _given(overrides: dict[str, Any] | None, dotted: str) -> bool:
    node: Any = overrides or {}
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True
