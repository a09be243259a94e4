"""Never lose work, never duplicate it: resume, torn-line repair, fingerprint refusal, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CATALOG, REPO
from fake_openai import FakeOpenAIServer
from runs import all_records, responder, scripted_run

from synth_empathy.config import load_config
from synth_empathy.corpus.repair import repair_torn_tail
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE
from synth_empathy.errors import UserError
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Dialogue, Manifest, Rejection


def test_resume_after_a_crash_redoes_only_the_lost_seeds(tmp_path):
    scripted_run(tmp_path, 4)
    kept = tmp_path / "out" / KEPT_FILE
    lines = kept.read_text().splitlines(keepends=True)
    lost = [json.loads(line)["id"] for line in lines[-2:]]
    kept.write_text("".join(lines[:-2]) + lines[-2][:40])  # one record lost, the next torn mid-write
    manifest = scripted_run(tmp_path, 4)
    records = all_records(tmp_path / "out")
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records}) and len(records) == 4
    assert set(lost) <= {r["id"] for r in records}
    assert manifest.counts == {"planned": 4, "kept": 4, "rejected": 0, "this_run": 2, "to_retry": 0}
    assert manifest.finished is not None


@pytest.mark.parametrize(("tail", "kept_lines", "changed"), [
    ("", 2, False),
    ("{\"id\": \"d3\", \"turns\": [", 2, True),  # cut mid-record
    ("\0\0\0\0", 2, True),  # zeros a filesystem left after a crash
    (None, 2, True),  # a complete record that lost its newline: kept, not cut
])
def test_torn_last_line_is_repaired(tmp_path, tail, kept_lines, changed):
    path = tmp_path / "x.jsonl"
    good = '{"id": "d1"}\n{"id": "d2"}\n'
    path.write_text(good[:-1] if tail is None else good + tail)
    assert repair_torn_tail(path) is changed
    assert path.read_text() == good and len(path.read_text().splitlines()) == kept_lines


def test_runtime_settings_may_change_on_resume_but_what_is_written_may_not(tmp_path):
    scripted_run(tmp_path, 2)
    scripted_run(tmp_path, 3, {"concurrency": 4, "model": {"retries": 7, "timeout_s": 5, "backoff_s": 2},
                               "prices": {"local:x.gguf": {"input": 1, "output": 2}}})
    assert len(all_records(tmp_path / "out")) == 3
    for changed in ({"seed": 1}, {"model": {"temperature": 0.1}}, {"judge": {"min_sensibility": 9}}):
        with pytest.raises(UserError, match="holds a run with a different config"):
            scripted_run(tmp_path, 3, changed)


def test_a_folder_left_by_a_kill_before_the_first_manifest_is_reused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / (MANIFEST_FILE + ".tmp")).write_text("{")
    scripted_run(tmp_path, 1)
    assert len(all_records(tmp_path / "out")) == 1


def _cli_config(tmp_path: Path, server: FakeOpenAIServer) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                    "[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n"
                    f'[model]\nbackend = "openai"\nmodel = "m"\napi_base = "{server.base_url}"\n')
    return path


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_resume_finishes(tmp_path, fake_openai):
    fake_openai.responder = responder
    fake_openai.latency_s = 0.05
    cfg, out = _cli_config(tmp_path, fake_openai), tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_empathy", "generate", "-n", "8", "--out", str(out), "--config", str(cfg),
         "--concurrency", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ((out / KEPT_FILE).exists() and (out / KEPT_FILE).read_text()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # dialogues are in flight: 8 seeds, 2 at a time, one written so far
    _, err = proc.communicate(timeout=20)

    assert proc.returncode == 130, err
    assert "interrupted" in err and "Resume with: synth-empathy generate -n 8" in err and "--resume" in err
    assert "Traceback" not in err
    written = all_records(out)
    assert 1 <= len(written) < 8
    [Dialogue.model_validate(r) if "turns" in r else Rejection.model_validate(r) for r in written]
    assert Manifest.model_validate_json((out / MANIFEST_FILE).read_text()).finished is None

    manifest = run_generate(load_config(cfg, {"n": 8, "concurrency": 8}), out, resume=True)
    ids = [r["id"] for r in all_records(out)]
    assert len(ids) == 8 == len(set(ids))
    assert manifest.counts["kept"] + manifest.counts["rejected"] == 8 and manifest.finished
