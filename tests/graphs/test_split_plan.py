"""`[sampler] split = "train"` (`generate --split train`): a corpus to train on never meets a situation `eval` plays."""

from conftest import CATALOG
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import load_config
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_for
from synth_empathy.graphs.split import held_out_ids

DIRS = {"personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios")}


def test_the_train_split_plans_no_held_out_situation_and_all_stays_as_it_was():
    catalog = load_catalog(CATALOG / "personas", CATALOG / "scenarios")
    held = held_out_ids(catalog)
    every = plan_for(catalog, load_config(None, {**DIRS, "n": 40}))
    train = plan_for(catalog, load_config(None, {**DIRS, "n": 40, "sampler": {"split": "train"}}))
    assert len(train) == 40 and not {s.situation.id for s in train} & held
    assert {s.situation.id for s in every} & held  # the default draws from every situation, as before
    assert plan_for(catalog, load_config(None, {**DIRS, "n": 40, "sampler": {"split": "all"}})) == every


def test_the_default_split_keeps_earlier_runs_fingerprints():
    default, explicit = load_config(None, DIRS), load_config(None, {**DIRS, "sampler": {"split": "all"}})
    assert default.fingerprint() == explicit.fingerprint()
    assert load_config(None, {**DIRS, "sampler": {"split": "train"}}).fingerprint() != default.fingerprint()


def test_generate_split_flag(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--split", "eval"])
    assert bad.exit_code == 2 and "--split" in bad.output and "Traceback" not in bad.output
    dry = runner.invoke(app, ["generate", "-n", "5", "--out", str(tmp_path / "o"), "--split", "train", "--dry-run"])
    assert dry.exit_code == 0, dry.output
