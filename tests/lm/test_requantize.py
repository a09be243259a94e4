"""The Q8_0 copy the embedded model runs as: which models are converted, where the copy lives, and what
happens when it cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synth_empathy.config import ModelConfig
from synth_empathy.errors import UserError
from synth_empathy.lm import _local_engine
from synth_empathy.lm.local import LlamaEngine, embedded_model_path
from synth_empathy.lm.requantize import cache_dir, copy_path, requantized


def test_the_embedded_model_runs_as_a_q8_0_copy_and_your_own_gguf_as_it_is(tmp_path):
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    assert _local_engine(embedded_model_path(), ModelConfig()).requantize == "q8_0"
    assert _local_engine(embedded_model_path(), ModelConfig(requantize="off")).requantize is None
    assert _local_engine(own, ModelConfig()).requantize is None
    assert _local_engine(own, ModelConfig(requantize="q8_0")).requantize == "q8_0"


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTH_EMPATHY_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SYNTH_EMPATHY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "synth-empathy"


def test_a_changed_source_file_gets_a_new_copy(tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF one")
    first = copy_path(source, "q8_0")
    source.write_bytes(b"GGUF second version")
    assert copy_path(source, "q8_0") != first
    assert first.parent == cache_dir() / "models" and first.name.endswith(".q8_0.gguf")


def test_an_unwritable_cache_runs_the_model_as_shipped_and_says_why(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SYNTH_EMPATHY_CACHE", str(blocker / "cache"))
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")
    assert requantized(source, "q8_0") == source
    err = capsys.readouterr().err
    assert "could not write a Q8_0 copy" in err and "SYNTH_EMPATHY_CACHE" in err and len(err.splitlines()) == 1


def test_an_unknown_type_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="requantize must be one of q8_0"):
        requantized(tmp_path / "m.gguf", "q2_k")


@pytest.mark.model
def test_the_copy_is_a_q8_0_gguf_made_once():
    engine = LlamaEngine(embedded_model_path(), n_ctx=512, requantize="q8_0")
    llama = engine._model()
    assert engine.loaded_path == copy_path(embedded_model_path(), "q8_0")
    assert llama.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
    assert engine.stats() == {} or engine.stats()["weights"] == "Q8_0 copy"
    made = os.stat(engine.loaded_path).st_mtime_ns
    again = LlamaEngine(embedded_model_path(), n_ctx=512, requantize="q8_0")
    again._model()
    assert again.loaded_path == engine.loaded_path and os.stat(again.loaded_path).st_mtime_ns == made
    out = llama.create_completion("My cat went missing and I", max_tokens=6, temperature=0)
    assert out["usage"]["completion_tokens"] >= 1
    assert Path(engine.loaded_path).stat().st_size > embedded_model_path().stat().st_size
