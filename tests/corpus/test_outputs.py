"""One rule for every writer: never delete or replace what the command did not write, and never an input."""

import shutil

import pytest
from corpora import make_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.outputs import WRITTEN

runner = CliRunner()
ENDPOINT = ["--backend", "openai", "--model", "m", "--api-base", "http://127.0.0.1:9/v1"]  # refused before a call


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus", n=8, rejected=2)


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"OPENAI_API_KEY": "sk-x"})


def test_hf_overwrite_never_deletes_a_corpus_nested_in_the_export_folder(corpus, tmp_path):
    pytest.importorskip("datasets")
    out = tmp_path / "hf"
    assert _invoke("export", corpus, "--format", "hf", "--out", out).exit_code == 0
    assert (out / WRITTEN).is_file()
    nested = out / "run"
    shutil.copytree(corpus, nested)
    before = {p.relative_to(nested): p.read_bytes() for p in nested.rglob("*") if p.is_file()}
    result = _invoke("export", corpus, "--format", "hf", "--out", out, "--overwrite", "--split", "1,0,0")
    assert result.exit_code == 0, result.output
    assert {p.relative_to(nested): p.read_bytes() for p in nested.rglob("*") if p.is_file()} == before
    assert not (out / "validation").exists() and not list((out / "data").glob("validation-*"))  # its own stale files
    assert (out / "dataset_dict.json").is_file()


def test_an_export_into_a_folder_holding_its_input_is_refused(corpus, tmp_path):
    result = _invoke("export", corpus, "--format", "hf", "--out", tmp_path, "--overwrite")
    assert result.exit_code == 2 and "holds the input" in result.output


@pytest.mark.parametrize("command", ["dedup", "judge"])
def test_dedup_and_judge_never_replace_their_input(corpus, command):
    source = corpus / "dialogues.jsonl"
    before = source.read_bytes()
    extra = ENDPOINT if command == "judge" else []
    for flags in ([], ["--overwrite"]):
        result = _invoke(command, source, "--out", source, *flags, *extra)
        assert result.exit_code == 2 and "never replaces its input" in result.output, result.output
    assert source.read_bytes() == before


@pytest.mark.parametrize("command", ["dedup", "judge"])
def test_dedup_and_judge_refuse_an_existing_out_without_overwrite(corpus, tmp_path, command):
    out = tmp_path / "mine.jsonl"
    out.write_text("precious\n")
    extra = ENDPOINT if command == "judge" else []
    result = _invoke(command, corpus / "dialogues.jsonl", "--out", out, *extra)
    assert result.exit_code == 2 and "already exists; choose another path or pass --overwrite" in result.output
    assert out.read_text() == "precious\n"


def test_dedup_with_overwrite_replaces_its_own_earlier_output(corpus, tmp_path):
    out = tmp_path / "kept.jsonl"
    assert _invoke("dedup", corpus / "dialogues.jsonl", "--out", out).exit_code == 0
    assert _invoke("dedup", corpus / "dialogues.jsonl", "--out", out).exit_code == 2
    assert _invoke("dedup", corpus / "dialogues.jsonl", "--out", out, "--overwrite").exit_code == 0


def test_filter_refuses_a_folder_holding_files_it_did_not_write(corpus, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "README.md").write_text("mine")
    result = _invoke("filter", corpus / "dialogues.jsonl", "--out", out, *ENDPOINT)
    assert result.exit_code == 2 and "files this command did not write" in result.output
    assert (out / "README.md").read_text() == "mine"
