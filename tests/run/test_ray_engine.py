"""The Ray engine: `generate --engine ray` writes what the local engine writes, and dedups across actors."""

from __future__ import annotations

import json

import pytest
from conftest import CATALOG
from fake_openai import FakeOpenAIServer, judge_keeps, keeping_responder
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import load_config

ray = pytest.importorskip("ray")

runner = CliRunner()


@pytest.fixture(scope="module")
def endpoint():
    with FakeOpenAIServer() as server:
        server.responder = keeping_responder
        yield server


def _generate(tmp_path, endpoint, out, *extra: str):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                   "concurrency = 2\n[dialogue]\nmin_turns = 1\nmax_turns = 1\n[ray]\nbatch_size = 2\n")
    return runner.invoke(app, ["generate", "-n", "6", "--out", str(out), "--config", str(cfg), "--backend", "openai",
                               "--model", "gen", "--api-base", endpoint.base_url, *extra])


def _records(out) -> dict[str, list[str]]:
    return {name: sorted(json.loads(line)["id"] for line in (out / name).read_text().splitlines())
            for name in ("dialogues.jsonl", "rejected.jsonl")}


def test_ray_engine_writes_the_same_records_as_the_local_engine(local_ray, endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    local = _generate(tmp_path, endpoint, tmp_path / "local")
    assert local.exit_code == 0, local.output
    # Half the plan first, then a resume that finishes it: the driver skips what is written.
    on_ray = _generate(tmp_path, endpoint, tmp_path / "ray", "--engine", "ray", "-n", "3")
    assert on_ray.exit_code == 0, on_ray.output
    on_ray = _generate(tmp_path, endpoint, tmp_path / "ray", "--engine", "ray")
    assert on_ray.exit_code == 0, on_ray.output
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    assert len(_records(tmp_path / "ray")["dialogues.jsonl"]) == 6
    ray_manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert ray_manifest["config_fingerprint"] == local_manifest["config_fingerprint"]
    assert ray_manifest["counts"] == {**local_manifest["counts"], "this_run": 3}
    for stage, usage in local_manifest["usage"].items():  # the actors' usage, merged on the driver
        mine = ray_manifest["usage"][stage]
        assert (mine["calls"], mine["input_tokens"], mine["output_tokens"]) == (
            usage["calls"], usage["input_tokens"], usage["output_tokens"]), stage
        assert mine["p50_s"] is not None


SAME_TURNS = {True: "I lost the warehouse job today and I keep replaying the call from my boss.",
              False: "That sounds like a heavy blow, and replaying the call shows how much the job meant to you."}


def test_near_duplicates_made_on_different_actors_are_not_both_kept(local_ray, tmp_path, monkeypatch):
    from synth_empathy.run.generate import run_generate
    from synth_empathy.run.ray_engine import RayExecutor

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    with FakeOpenAIServer() as server:  # every dialogue gets the same two turns: all are duplicates of one
        server.responder = lambda body: judge_keeps(body) if "response_format" in body else SAME_TURNS[
            "role-playing a real person" in body["messages"][0]["content"]]
        cfg = load_config(None, {"n": 4, "personas_dir": str(CATALOG / "personas"),
                                 "scenarios_dir": str(CATALOG / "scenarios"), "concurrency": 1,
                                 "dialogue": {"min_turns": 1, "max_turns": 1, "critique_rounds": 0},
                                 "model": {"backend": "openai", "model": "gen", "api_base": server.base_url}})
        manifest = run_generate(cfg, tmp_path / "out", executor=RayExecutor(workers=2, batch_size=1))
    assert manifest.counts["kept"] == 1 and manifest.rejection_reasons == {"exact_duplicate": 3}


def test_engine_ray_without_ray_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--engine", "ray"])
    assert result.exit_code == 2, result.output
    assert result.output == "error: --engine ray needs Ray, which is not installed: pip install 'synth-empathy[ray]'\n"
