"""End to end on the real embedded model (SmolLM2-135M via llama.cpp): one short dialogue, offline."""

import json
import os
import subprocess
import sys

import pytest
from conftest import CATALOG

from synth_empathy.schema import Dialogue, Manifest, Rejection

pytestmark = pytest.mark.model


def test_generate_one_dialogue_on_the_embedded_model(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                      "[dialogue]\nmin_turns = 1\nmax_turns = 1\nkeep_drafts = true\n")
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    proc = subprocess.run([sys.executable, "-m", "synth_empathy", "generate", "-n", "1", "--out", str(out),
                           "--config", str(config)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Not a quality claim: the judge is the embedded" in proc.stdout  # the closing line says it plainly
    kept = [Dialogue.model_validate_json(line) for line in (out / "dialogues.jsonl").read_text().splitlines()]
    rejected = [Rejection.model_validate_json(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(kept) + len(rejected) == 1
    dialogue = kept[0] if kept else rejected[0].dialogue
    assert dialogue is not None, rejected[0].detail  # the model must at least produce a dialogue
    assert [t.role for t in dialogue.turns] == ["seeker", "supporter"]
    assert all(t.text.strip() for t in dialogue.turns)
    assert dialogue.turns[1].strategy and dialogue.turns[1].drafts
    manifest = Manifest.model_validate(json.loads((out / "manifest.json").read_text()))
    assert manifest.models["generator"].startswith("local:SmolLM2-135M")
    assert manifest.usage["supporter"].input_tokens > 0
    assert (out / "README.md").exists()
