from pathlib import Path

import pytest

from synth_empathy.config import load_config
from synth_empathy.errors import UserError


def test_defaults_run_the_embedded_model_offline():
    cfg = load_config()
    assert cfg.model.backend == "local" and cfg.model.model is None
    assert cfg.personas_dir.is_dir() and cfg.scenarios_dir.is_dir()


def test_file_then_flags_flags_win(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 7\n[dialogue]\nmax_turns = 5\n[judge]\nmin_sensibility = 4\n')
    cfg = load_config(path, {"dialogue": {"max_turns": 2}})
    assert (cfg.seed, cfg.dialogue.max_turns, cfg.judge.min_sensibility) == (7, 2, 4)


def test_yaml_config_is_read(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  temperature: 0.5\n")
    assert load_config(path).model.temperature == 0.5


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[dialogue]\nmin_turns = 5\nmax_turns = 2\n", "min_turns (5) is larger than max_turns (2)"),
        ("concurrency = 0\n", "invalid setting concurrency"),
        ("[model]\nbackend = 'azure'\n", "invalid setting model.backend"),
        ("nonsense = 1\n", "invalid setting nonsense"),
        ("seed = [\n", "is not valid TOML"),
    ],
)
def test_invalid_config_is_one_sentence_naming_the_setting(tmp_path: Path, content: str, fragment: str):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(UserError) as err:
        load_config(path)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value).split(": ", 1)[0]


def test_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_fingerprint_ignores_n_and_concurrency_but_not_generation_settings():
    base = load_config()
    assert base.fingerprint() == load_config(None, {"n": 99, "concurrency": 8}).fingerprint()
    assert base.fingerprint() != load_config(None, {"seed": 1}).fingerprint()
    assert base.fingerprint() != load_config(None, {"model": {"temperature": 0.1}}).fingerprint()


def test_the_local_backend_runs_several_dialogues_by_default_and_an_endpoint_one():
    from synth_empathy.config import LOCAL_CONCURRENCY

    assert load_config().concurrency == LOCAL_CONCURRENCY
    assert load_config(overrides={"concurrency": 1}).concurrency == 1
    assert load_config(overrides={"model": {"backend": "openai", "model": "m"}}).concurrency == 1
    assert load_config(overrides={"model": {"threads": 1}}).fingerprint() == load_config().fingerprint()
