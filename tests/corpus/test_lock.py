"""One writer per output: a second process writing into a locked --out is refused with one sentence, exit 2."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO
from corpora import make_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.lock import LOCK, lock_path, output_lock
from synth_empathy.errors import UserError

runner = CliRunner()
HOLDER = """
import sys
from pathlib import Path
from synth_empathy.corpus.lock import output_lock
with output_lock(Path(sys.argv[1]), folder=sys.argv[2] == "folder"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_by_another_process(out: Path, folder: bool):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), "folder" if folder else "file"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def _refused(result, out: Path, pid: int) -> None:
    assert result.exit_code == 2, result.output
    assert f"{out} is being written by another synth-empathy process (pid {pid}); wait for it" in result.output
    assert "Traceback" not in result.output


def test_a_second_generate_into_a_locked_out_is_refused_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    with held_by_another_process(out, folder=True) as pid:
        result = runner.invoke(app, ["generate", "-n", "2", "--out", str(out), "--backend", "openai", "--model", "m",
                                     "--api-base", "http://127.0.0.1:9/v1"], env={"OPENAI_API_KEY": "sk-x"})
        _refused(result, out, pid)
        assert [p.name for p in out.iterdir()] == [LOCK]  # the holder's lock file, nothing of the refused run


def test_filter_and_export_into_a_locked_out_are_refused(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n=6, rejected=2)
    out = tmp_path / "filtered"
    with held_by_another_process(out, folder=True) as pid:
        result = runner.invoke(app, ["filter", str(corpus / "dialogues.jsonl"), "--out", str(out)])
        _refused(result, out, pid)
    train = tmp_path / "train.jsonl"
    with held_by_another_process(train, folder=False) as pid:
        _refused(runner.invoke(app, ["export", str(corpus), "--format", "openai", "--out", str(train)]), train, pid)
        assert not train.exists()
    assert runner.invoke(app, ["export", str(corpus), "--format", "openai", "--out", str(train)]).exit_code == 0
    assert not lock_path(train, folder=False).exists()  # released and removed


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), "folder"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match=f"pid {proc.pid}"):
        with output_lock(out, folder=True):
            pass
    proc.kill()
    proc.wait(timeout=30)
    with output_lock(out, folder=True):  # the kernel dropped the dead holder's lock; its file is reused
        assert (out / LOCK).read_text().strip() == str(os.getpid())
    assert not (out / LOCK).exists()


def test_two_writers_in_one_process_are_refused_too(tmp_path):
    with output_lock(tmp_path / "run", folder=True):
        with pytest.raises(UserError, match="is being written by another synth-empathy process"):
            with output_lock(tmp_path / "run", folder=True):
                pass


def test_a_command_that_writes_nothing_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(UserError), output_lock(out, folder=True):
        assert (out / LOCK).exists()
        raise UserError("refused before any record")
    assert not (tmp_path / "new").exists()
    with output_lock(out, folder=True):
        (out / "dialogues.jsonl").write_text("{}\n")
    assert (out / "dialogues.jsonl").exists() and not (out / LOCK).exists()
    with output_lock(tmp_path / "made-empty", folder=True):
        pass
    assert not (tmp_path / "made-empty").exists()
    (tmp_path / "existing").mkdir()
    with output_lock(tmp_path / "existing", folder=True):
        pass
    assert (tmp_path / "existing").is_dir()  # a folder that was there before stays, empty or not
