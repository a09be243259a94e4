"""The checks behind the bad-input sweep, pinned one by one: config n, plan bounds and laziness, weight names,
the GGUF magic, bounded lines, unusable --out paths."""

from __future__ import annotations

import itertools

import pytest
from conftest import CATALOG
from fake_openai import FakeOpenAIServer, keeping_responder
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import MAX_N, ModelConfig, load_config
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import iter_seeds, plan_seeds
from synth_empathy.lm import build_lm
from synth_empathy.userfiles import check_out, iter_lines

runner = CliRunner()
CATALOG_TOML = f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG / "personas", CATALOG / "scenarios")


def test_config_n_is_used_when_no_n_flag_is_given(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(CATALOG_TOML + "n = 2\n[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n")
    with FakeOpenAIServer() as server:
        server.responder = keeping_responder
        base = ["generate", "--config", str(cfg), "--backend", "openai", "--model", "m", "--api-base", server.base_url]
        env = {"OPENAI_API_KEY": "sk-test-fake"}
        from_config = runner.invoke(app, [*base, "--out", str(tmp_path / "a")], env=env)
        from_flag = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "-n", "1"], env=env)
    assert from_config.exit_code == 0, from_config.output
    assert "of 2 planned" in from_config.stdout
    assert from_flag.exit_code == 0 and "of 1 planned" in from_flag.stdout


@pytest.mark.parametrize(("value", "fragment"), [
    ("-5", "greater than or equal to 1"), ("1000000000000", f"less than or equal to {MAX_N}"),
    ('"ten"', "valid integer"), ("2.5", "valid integer"), ("true", "valid integer"),
])
def test_config_n_is_validated(tmp_path, value, fragment):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"n = {value}\n")
    with pytest.raises(UserError, match=fragment):
        load_config(cfg)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_infinite_or_nan_settings_are_refused(tmp_path, value):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"[model]\ntimeout_s = {value}\n")
    with pytest.raises(UserError, match="model.timeout_s"):
        load_config(cfg)


def test_a_huge_plan_costs_nothing_up_front(catalog):
    # A list of MAX_N seeds would take many GB; the generator yields its first seeds at once.
    first = list(itertools.islice(iter_seeds(catalog, MAX_N, seed=4), 25))
    assert [s.id for s in first] == [s.id for s in plan_seeds(catalog, 25, seed=4)]


def test_plan_bounds_are_checked_at_the_call(catalog):
    for n in (-5, MAX_N + 1):
        with pytest.raises(UserError, match=f"0 to {MAX_N:,} seeds"):
            iter_seeds(catalog, n)


def test_a_misspelled_weight_name_names_the_closest(catalog):
    emotion = catalog.emotions[0].id
    typo = emotion[:-1] + ("x" if emotion[-1] != "x" else "y")
    with pytest.raises(UserError, match=f"'{typo}' is not in the catalog; did you mean {emotion}"):
        iter_seeds(catalog, 3, emotion_weights={typo: 2})
    with pytest.raises(UserError, match="problem_type_weights: 'zzzzzz' is not in the catalog; known: "):
        iter_seeds(catalog, 3, problem_type_weights={"zzzzzz": 2})


def test_graph_stats_plan_out_of_bounds_is_one_sentence():
    for plan in ("-5", str(MAX_N + 1)):
        result = runner.invoke(app, ["graph", "stats", "--plan", plan])
        assert result.exit_code == 2 and result.stderr.startswith("error: --plan must be 0 to"), result.output


def test_a_local_model_that_is_not_gguf_is_refused_before_any_work(tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(UserError, match="is not a GGUF model"):
        build_lm(ModelConfig(model=str(fake)))


def test_lines_are_bounded_and_utf8(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"y" * 64 + b"\n")
    assert [n for n, _ in iter_lines(path, max_bytes=80)] == [1, 2]
    with pytest.raises(UserError, match="line 2 is longer than"):
        list(iter_lines(path, max_bytes=32))
    path.write_bytes(b'{"a": 1}\n\xff\n')
    with pytest.raises(UserError, match="line 2 is not UTF-8 text"):
        list(iter_lines(path))


def test_check_out_refuses_what_cannot_be_written(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    check_out(tmp_path / "new" / "deeper", "dir")
    assert not (tmp_path / "new").exists()  # a check, not a mkdir
    with pytest.raises(UserError, match="is a file; it needs a folder"):
        check_out(a_file, "dir")
    with pytest.raises(UserError, match="is a folder; it needs a file"):
        check_out(tmp_path, "file")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_out(a_file / "out.jsonl", "file")
