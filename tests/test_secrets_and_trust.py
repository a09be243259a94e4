"""Secrets and trust (issue 12): credentials in --api-base are redacted wherever they are written, a key pasted
as --api-key-env is never echoed, a saved program cannot bring its own LM, the card's front matter is YAML."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import CATALOG
from corpora import make_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.store import CARD_FILE
from synth_empathy.errors import UserError, error_detail
from synth_empathy.programs import Supporter, load_programs
from synth_empathy.publish.card import write_card
from synth_empathy.redact import redact

runner = CliRunner()
KEY = "K3yMat3rial0123456789"


@pytest.mark.parametrize("text", [
    f"http://user:{KEY}@host/v1", f"https://{KEY}@host:8443/v1", f"http://host/v1?api-key={KEY}",
    f"http://host/v1?x=1&key={KEY}&y=2", f"http://host/v1?token={KEY}#frag", f"Authorization: Bearer {KEY}",
    f"Connection refused: http://u:{KEY}@127.0.0.1:9/v1/chat/completions", f"the key is sk-{KEY}",
])
def test_redact_removes_the_credential_and_keeps_the_rest(text):
    out = redact(text)
    assert KEY not in out and "***" in out
    assert out.split("***")[-1] == text.split(KEY)[-1]  # what follows the secret is kept


def test_redact_leaves_plain_urls_and_prose_alone():
    for text in ("http://127.0.0.1:8000/v1", "http://host/v1?model=m&stream=1", "keep the supporter kind"):
        assert redact(text) == text


def test_error_detail_is_redacted():
    assert KEY not in error_detail(ConnectionError(f"cannot reach http://me:{KEY}@host/v1"))


def test_api_base_credentials_never_reach_manifest_rejected_or_stderr(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    config = tmp_path / "run.toml"
    config.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                      "[dialogue]\nmin_turns = 1\nmax_turns = 1\n[model]\nretries = 0\ntimeout_s = 2\n")
    out = tmp_path / "o"
    api_base = f"http://user:{KEY}@127.0.0.1:9/v1?api-key={KEY}2&key={KEY}3"
    result = runner.invoke(app, ["generate", "-n", "2", "--out", str(out), "--config", str(config),
                                 "--backend", "openai", "--model", "m", "--api-base", api_base])
    assert result.exit_code == 1, result.output  # every call failed: the run failed, and said so on stderr
    assert "error: " in result.stderr and KEY not in result.output
    written = {p.name: p.read_text() for p in out.iterdir()}
    assert {"manifest.json", "rejected.jsonl", CARD_FILE} <= set(written)
    for name, text in written.items():
        assert KEY not in text, name
    manifest = json.loads(written["manifest.json"])
    assert manifest["config"]["model"]["api_base"] == "http://***@127.0.0.1:9/v1?api-key=***&key=***"


def test_a_key_given_as_api_key_env_is_refused_without_echoing_it(tmp_path):
    pasted = "sk-proj-" + KEY
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--backend", "openai",
                                 "--model", "m", "--api-key-env", pasted])
    assert result.exit_code == 2, result.output
    assert "--api-key-env" in result.output and "name of an environment variable" in result.output
    assert KEY not in result.output and "sk-proj" not in result.output


def _saved_supporter(tmp_path):
    Supporter().save(str(tmp_path / "supporter.json"))
    return json.loads((tmp_path / "supporter.json").read_text())


def test_a_saved_program_loads_its_instructions_and_demos(tmp_path):
    state = _saved_supporter(tmp_path)
    name = next(k for k in state if k != "metadata")
    state[name]["signature"]["instructions"] = "Answer warmly."
    state[name]["demos"] = [{"augmented": True, "reply": "I hear you."}]
    (tmp_path / "supporter.json").write_text(json.dumps(state))
    predictor = dict(load_programs(1, tmp_path).supporter.named_predictors())[name]
    assert predictor.signature.instructions == "Answer warmly."
    assert predictor.demos[0]["reply"] == "I hear you." and predictor.lm is None


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("lm", {"model": "openai/other", "api_base": "http://elsewhere.example/v1"}, "sets 'lm'"),
    ("traces", [{"x": 1}], "sets 'traces'"),
    ("callbacks", ["os.system"], "has 'callbacks'"),
])
def test_a_saved_program_that_carries_more_than_instructions_and_demos_is_refused(tmp_path, key, value, fragment):
    state = _saved_supporter(tmp_path)
    name = next(k for k in state if k != "metadata")
    state[name][key] = value
    (tmp_path / "supporter.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match=fragment) as err:
        load_programs(1, tmp_path)
    assert "instructions and demos only" in str(err.value)


def test_a_saved_program_cannot_name_a_predictor_the_program_lacks(tmp_path):
    state = _saved_supporter(tmp_path)
    state["elsewhere"] = state[next(k for k in state if k != "metadata")]
    (tmp_path / "supporter.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="'elsewhere' is not a predictor"):
        load_programs(1, tmp_path)


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_card_front_matter_is_yaml_even_for_a_hostile_licence(tmp_path):
    run = make_corpus(tmp_path / "run", n=4, rejected=1)
    manifest = json.loads((run / "manifest.json").read_text())
    hostile = "mit\npretty_name: pwned\nevil: [1"
    manifest["config"]["license"] = hostile
    (run / "manifest.json").write_text(json.dumps(manifest))
    write_card(run, read_manifest(run))
    meta = _front_matter((run / CARD_FILE).read_text())
    assert meta["license"] == hostile.lower()
    assert meta["pretty_name"] == "Synthetic empathetic dialogues" and "evil" not in meta


def test_hub_card_front_matter_lists_the_splits(tmp_path):
    pytest.importorskip("datasets")
    run = make_corpus(tmp_path / "run", n=12, rejected=1)
    result = runner.invoke(app, ["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    meta = _front_matter((tmp_path / "hf" / CARD_FILE).read_text())
    files = meta["configs"][0]["data_files"]
    assert {f["split"] for f in files} <= {"train", "validation", "test"} and files[0]["path"].startswith("data/")
