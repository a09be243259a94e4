import json
import shutil

import pytest
from conftest import CATALOG
from fake_openai import FakeOpenAIServer, keeping_responder
from typer.testing import CliRunner

from synth_empathy.cli import app

runner = CliRunner()


def _config(tmp_path, body: str = "") -> str:
    path = tmp_path / "run.toml"
    path.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                    f"[dialogue]\nmin_turns = 1\nmax_turns = 1\n{body}")
    return str(path)


def _one_sentence_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_unknown_backend_is_bad_input(tmp_path):
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--backend", "azure"])
    _one_sentence_error(result, 2, "--backend must be 'local', 'openai' or 'litellm'")


def test_missing_api_key_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--backend", "openai",
                                 "--model", "m", "--api-base", "http://127.0.0.1:9/v1"])
    _one_sentence_error(result, 2, "set the environment variable OPENAI_API_KEY")


def test_malformed_persona_file_is_bad_input(tmp_path):
    shutil.copytree(CATALOG, tmp_path / "c")
    bad = tmp_path / "c" / "personas" / "personas.yaml"
    bad.write_text(bad.read_text().replace("age_band: 65+", "age_band: ancient"))
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'personas_dir = "{tmp_path / "c" / "personas"}"\n')
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    _one_sentence_error(result, 2, "personas.yaml: personas entry t02, field age_band")


def test_invalid_config_value_is_bad_input(tmp_path):
    result = runner.invoke(app, ["generate", "-n", "0", "--out", str(tmp_path / "o")])
    _one_sentence_error(result, 2, "invalid setting n")


def test_missing_gguf_is_bad_input(tmp_path):
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--model", "/no/such.gguf"])
    _one_sentence_error(result, 2, "does not exist")


def test_unreachable_endpoint_fails_the_run_and_keeps_the_records(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    out = tmp_path / "o"
    result = runner.invoke(app, ["generate", "-n", "2", "--out", str(out), "--config",
                                 _config(tmp_path, "[model]\nretries = 0\ntimeout_s = 2\n"), "--backend", "openai",
                                 "--model", "m", "--api-base", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 1, result.output
    assert "all 2 dialogues of this run failed" in result.output
    assert len((out / "rejected.jsonl").read_text().splitlines()) == 2


def test_openai_backend_generates_through_http_and_never_writes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-abc123")
    out = tmp_path / "o"
    with FakeOpenAIServer() as server:
        server.responder = keeping_responder
        result = runner.invoke(app, ["generate", "-n", "2", "--out", str(out), "--config", _config(tmp_path),
                                     "--backend", "openai", "--model", "gen-model", "--judge-model", "judge-model",
                                     "--api-base", server.base_url, "--api-key-env", "MY_KEY"])
        requests = server.chat_requests
    assert result.exit_code == 0, result.output
    assert {r.body["model"] for r in requests} == {"gen-model", "judge-model"}
    assert all(r.api_key == "sk-secret-abc123" for r in requests)
    for path in out.iterdir():
        assert "sk-secret-abc123" not in path.read_text(), path.name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"] == {"generator": "openai:gen-model", "judge": "openai:judge-model"}
    assert manifest["config"]["model"]["api_key_env"] == "MY_KEY"
    assert manifest["usage"]["supporter"]["input_tokens"] > 0


@pytest.mark.parametrize("as_json", [True, False])
def test_graph_stats_reports_counts(as_json):
    result = runner.invoke(app, ["graph", "stats", "--plan", "200"] + (["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    if as_json:
        data = json.loads(result.output)
        assert data["personas"] >= 80 and data["situations"] >= 200 and data["emotions"] == 32
        assert data["coverage"]["cells_possible"] > 0
    else:
        assert "personas" in result.output and "cells" in result.output
