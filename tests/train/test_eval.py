import json

import pytest
from conftest import CATALOG
from fake_openai import FakeOpenAIServer, keeping_responder
from scripted import ScriptedEngine, scripted_lm, varied_prose
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import ModelConfig, load_config
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.split import held_out_ids
from synth_empathy.publish.exports import DEFAULT_SYSTEM_PROMPT
from synth_empathy.train.evaluate import run_eval, write_eval

runner = CliRunner()
JUDGE = {"JudgeDialogue": {"sensibility": 7, "rationality": 5, "rationale": "Fine.", "sentiment_attenuation": True}}


def _config():
    return load_config(None, {"personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios"),
                              "dialogue": {"min_turns": 1, "max_turns": 2}})


def test_eval_plays_held_out_seeds_and_summarises_per_emotion(tmp_path):
    seeker = ScriptedEngine(prose=varied_prose(3), structured={"SeekerFeeling": {"intensity": 4}})
    result = run_eval(_config(), ModelConfig(backend="openai", model="policy"), 3,
                      generator_lm=scripted_lm(seeker), judge_lm=scripted_lm(ScriptedEngine(structured=JUDGE)),
                      policy_lm=scripted_lm(ScriptedEngine(prose=varied_prose(4))))
    held = held_out_ids(load_catalog(CATALOG / "personas", CATALOG / "scenarios"))
    assert len(result.episodes) == 3 and {ep.dialogue.seed.situation.id for ep in result.episodes} <= held
    overall = result.rows()[-1]
    assert overall["emotion"] == "all" and overall["n"] == 3 and overall["judged"] == 3
    assert overall["mean_sensibility"] == 7 and overall["failure_rates"]["sentiment_attenuation"] == 1.0
    drops = [ep.dialogue.seed.intensity - ep.final_intensity for ep in result.episodes]
    assert overall["mean_intensity_drop"] == pytest.approx(sum(drops) / 3, abs=1e-3)
    assert "supporter openai:policy" in result.table() and "all" in result.table()
    # Seeker and judge default to the embedded model: the table and eval.json say the figures are no evidence.
    caveats = [line for line in result.table().splitlines() if line.startswith("Not a quality claim")]
    assert len(caveats) == 2 and "judge is the embedded" in caveats[0] and "seeker is the embedded" in caveats[1]
    path = write_eval(result, tmp_path / "ev")
    data = json.loads(path.read_text())
    assert len(data["caveats"]) == 2
    assert data["summary"][-1] == overall and len(data["episodes"]) == 3
    assert data["episodes"][0]["profile"] is not None
    assert len((tmp_path / "ev" / "episodes.jsonl").read_text().splitlines()) == 3


def _seeker_config(tmp_path, server):
    path = tmp_path / "seeker.toml"
    path.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                    f'[dialogue]\nmin_turns = 1\nmax_turns = 2\n[model]\nbackend = "openai"\nmodel = "seeker-m"\n'
                    f'api_base = "{server.base_url}"\n')
    return str(path)


def test_eval_command_puts_the_named_model_in_the_supporters_seat(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    out = tmp_path / "ev"
    with FakeOpenAIServer() as server:
        server.responder = keeping_responder
        result = runner.invoke(app, ["eval", "--n", "2", "--out", str(out), "--config",
                                     _seeker_config(tmp_path, server), "--backend", "openai", "--model", "policy-m",
                                     "--api-base", server.base_url])
        requests = server.chat_requests
    assert result.exit_code == 0, result.output
    policy = [r for r in requests if r.body["model"] == "policy-m"]
    assert policy and all(r.body["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
                          for r in policy)
    assert all("response_format" not in r.body for r in policy)
    assert {r.body["model"] for r in requests} == {"policy-m", "seeker-m"}
    assert "mean" not in result.stdout.splitlines()[0] and "all" in result.stdout
    data = json.loads((out / "eval.json").read_text())
    assert data["supporter"] == "openai:policy-m" and data["seeker"] == "openai:seeker-m"
    assert data["caveats"] == [] and "Not a quality claim" not in result.stdout  # an endpoint seeker and judge
    again = runner.invoke(app, ["eval", "--n", "1", "--out", str(out), "--backend", "openai", "--model", "x",
                                "--api-base", "http://127.0.0.1:9/v1"])
    assert again.exit_code == 2 and "eval.json exists" in again.output


@pytest.mark.parametrize("args, fragment", [
    (["--n", "0"], "--n must be 1 to"),
    (["--backend", "azure"], "--backend must be"),
    (["--model", "/no/such.gguf"], "does not exist"),
])
def test_eval_bad_input_is_one_sentence_and_exit_2(tmp_path, args, fragment):
    result = runner.invoke(app, ["eval", "--out", str(tmp_path / "ev"), *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output
