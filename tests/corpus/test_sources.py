"""Licence and provenance: an imported dataset's licence travels from `graph import` to the card of a run."""

import json
import shutil
from pathlib import Path

import pytest
from builders import GOOD_TEXTS, make_dialogue
from scripted import ScriptedEngine, scripted_lm, varied_prose
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import load_config, shipped_catalog_dir
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Manifest


@pytest.fixture
def data_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data"


GOOD_JUDGE = {"JudgeDialogue": {"sensibility": 8, "rationality": 7, "rationale": "Warm and specific."}}


def _import(tmp_path, data_dir, *flags):
    out = tmp_path / "imported"
    result = CliRunner().invoke(app, ["graph", "import", str(data_dir / "import" / "situations_sample.jsonl"),
                                      "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    return out, result


def test_graph_import_records_the_licence_in_the_report_and_the_scenario_file(tmp_path, data_dir):
    out, _ = _import(tmp_path, data_dir, "--license", "CC-BY-NC-4.0")
    report = json.loads((out / "import_report.json").read_text())
    assert report["sources"][0]["license"] == "CC-BY-NC-4.0"
    catalog = load_catalog(shipped_catalog_dir("personas"), _scenarios_with(tmp_path, data_dir, out))
    assert [(s.id, s.license) for s in catalog.sources] == [("situations_sample", "CC-BY-NC-4.0")]
    assert {s.source for s in catalog.situations} == {"situations_sample"}


def test_without_a_licence_the_import_says_it_is_unknown(tmp_path, data_dir):
    _, result = _import(tmp_path, data_dir)
    assert "no --license given" in result.output


def _scenarios_with(tmp_path, data_dir, imported):
    """The shipped emotions and problem types with the imported situations only, so every seed is imported."""
    scenarios = tmp_path / "scenarios"
    if not scenarios.exists():
        scenarios.mkdir()
        for name in ("emotions.yaml", "problem_types.yaml"):
            shutil.copy(shipped_catalog_dir("scenarios") / name, scenarios / name)
        shutil.copy(imported / "scenarios" / "imported.yaml", scenarios / "imported.yaml")
    return scenarios


def test_a_run_seeded_from_an_import_states_its_licence_and_the_models_terms(tmp_path, data_dir):
    out, _ = _import(tmp_path, data_dir, "--license", "CC-BY-NC-4.0")
    scenarios = _scenarios_with(tmp_path, data_dir, out)
    cfg = load_config(None, {"n": 2, "concurrency": 1, "scenarios_dir": str(scenarios),
                             "dialogue": {"max_turns": 1, "min_turns": 1}})
    run_generate(cfg, tmp_path / "run", generator_lm=scripted_lm(ScriptedEngine(prose=varied_prose())),
                 judge_lm=scripted_lm(ScriptedEngine(structured=GOOD_JUDGE)))
    manifest = Manifest.model_validate_json((tmp_path / "run" / "manifest.json").read_text())
    assert [(s.id, s.license) for s in manifest.sources] == [("situations_sample", "CC-BY-NC-4.0")]
    assert manifest.pii is not None and manifest.pii["mode"] == "report"
    card = (tmp_path / "run" / "README.md").read_text()
    assert "| situations_sample | situations_sample.jsonl |" in card and "CC-BY-NC-4.0" in card
    # The config names the embedded model (the scripted LMs stand in for it), whose terms are known.
    assert "| generator | local:SmolLM2-135M-Instruct.Q4_1.gguf | Apache-2.0 (SmolLM2" in card
    assert "### Personal data" in card


def test_the_embedded_models_terms_are_known():
    from synth_empathy.publish.card import model_terms

    assert model_terms("local:SmolLM2-135M-Instruct.Q4_1.gguf").startswith("Apache-2.0")
    assert model_terms("openai:some-model") is None


def test_filter_credits_an_imported_corpus_under_its_licence_and_not_its_own_records(tmp_path, data_dir):
    from synth_empathy.run.corpus_filter import run_filter

    judge = scripted_lm(ScriptedEngine(structured=GOOD_JUDGE))
    source = data_dir / "import" / "messages_sample.jsonl"
    manifest, _ = run_filter(load_config(None, {}), source, tmp_path / "f1", judge_lm=judge,
                             source_license="CC-BY-SA-4.0")
    assert [(s.id, s.file, s.license) for s in manifest.sources] == [
        ("messages_sample", "messages_sample.jsonl", "CC-BY-SA-4.0")]
    assert "| messages_sample | messages_sample.jsonl | a chat dataset | CC-BY-SA-4.0 |" in (
        tmp_path / "f1" / "README.md").read_text()
    # Its filtered records still come from that dataset: filtered again, they are credited again (licence unknown
    # unless given); records generated from the catalog credit nothing.
    again, _ = run_filter(load_config(None, {}), tmp_path / "f1" / "dialogues.jsonl", tmp_path / "f2", judge_lm=judge)
    assert [(s.file, s.license) for s in again.sources] == [("dialogues.jsonl", "unknown")]
    ours = tmp_path / "ours.jsonl"
    ours.write_text("".join(make_dialogue(GOOD_TEXTS, ident=f"d{i}").model_dump_json() + "\n" for i in range(2)))
    generated, _ = run_filter(load_config(None, {}), ours, tmp_path / "f3", judge_lm=judge)
    assert generated.sources == []
