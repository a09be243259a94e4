"""Small generate runs for the run tests: against the fake endpoint, or on scripted LMs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CATALOG
from fake_openai import FakeOpenAIServer, keeping_responder
from scripted import ScriptedEngine, scripted_lm

from synth_empathy.config import ModelConfig, load_config
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Dialogue, Rejection

responder = keeping_responder  # varied prose, schema JSON, a judge that keeps


def run_config(server: FakeOpenAIServer, n: int, extra: dict | None = None, **model):
    """One exchange per dialogue, no critique: seeker, strategy, draft, judge = 4 calls."""
    return load_config(None, {
        "n": n, "personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios"),
        "dialogue": {"min_turns": 1, "max_turns": 1, "critique_rounds": 0},
        "model": {"backend": "openai", "model": "m", "api_base": server.base_url, "backoff_s": 0.01,
                  "timeout_s": 2, **model},
        **(extra or {}),
    })


def records(out):
    kept = [Dialogue.model_validate_json(line) for line in (out / KEPT_FILE).read_text().splitlines()]
    rejected = [Rejection.model_validate_json(line) for line in (out / REJECTED_FILE).read_text().splitlines()]
    return kept, rejected


GOOD_JUDGE = {"JudgeDialogue": {"sensibility": 8, "rationality": 8, "rationale": "Warm."}}


def scripted_run(tmp_path, n, overrides=None, **kw):
    cfg = load_config(None, {"n": n, "personas_dir": str(CATALOG / "personas"),
                             "scenarios_dir": str(CATALOG / "scenarios"),
                             "dialogue": {"min_turns": 1, "max_turns": 1, "critique_rounds": 0}, **(overrides or {})})
    prose = ScriptedEngine(prose=lambda messages: responder({"messages": messages}))
    return run_generate(cfg, tmp_path / "out", generator_lm=scripted_lm(prose),
                        judge_lm=scripted_lm(ScriptedEngine(structured=GOOD_JUDGE)), **kw)


def all_records(out: Path) -> list[dict]:
    return [json.loads(line) for name in (KEPT_FILE, REJECTED_FILE) for line in (out / name).read_text().splitlines()]


def endpoint_model(server: FakeOpenAIServer, **settings) -> ModelConfig:
    """A ModelConfig for the fake endpoint: short back-off and timeout so fault tests stay quick."""
    return ModelConfig(**{"backend": "openai", "model": "m", "api_base": server.base_url, "backoff_s": 0.01,
                          "timeout_s": 5, **settings})
