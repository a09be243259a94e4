"""A server nobody here wrote: llama-cpp-python's own `python -m llama_cpp.server` on the embedded GGUF.

It answers response_format json_schema with a 500 and ignores max_completion_tokens; `generate` and
`judge` must work through it as they are, with no proxy in between.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from builders import make_dialogue
from conftest import CATALOG
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.lm.local import embedded_model_path

pytestmark = pytest.mark.model

READY_WITHIN_S = 120
# llama.cpp's AMX path SIGILLs on VMs that advertise AMX without enabling it. The in-process engine loads
# with use_extra_bufts=False; the server has no flag or setting for it (0.3.36: see `--help`), and the fault
# comes with the first long prompt, not at start-up, so the server is always started with that parameter set.
_WITHOUT_EXTRA_BUFTS = (
    "import runpy, llama_cpp.llama_cpp as c\n"
    "default = c.llama_model_default_params\n"
    "def params():\n"
    "    p = default()\n"
    "    p.use_extra_bufts = False\n"
    "    return p\n"
    "c.llama_model_default_params = params\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(launcher: list[str], port: int, log) -> subprocess.Popen:
    args = ["--model", str(embedded_model_path()), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    return subprocess.Popen([sys.executable, *launcher, *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_ready(proc: subprocess.Popen, base_url: str) -> bool:
    """True once /v1/models answers; False if the process died first."""
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"llama_cpp.server did not answer {base_url}/models within {READY_WITHIN_S} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT/v1) of a running llama_cpp.server on the embedded model."""
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log:
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}/v1"
        proc = _start(["-c", _WITHOUT_EXTRA_BUFTS], port, log)
        try:
            ready = _wait_ready(proc, base_url)
            assert ready, f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
            yield base_url
        finally:
            _stop(proc)


def _env(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-no-key-needed")  # the server checks none; the backend wants one
    for name in ("OPENAI_API_BASE", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def test_generate_and_judge_through_llama_cpp_server(llama_server, tmp_path, monkeypatch):
    _env(monkeypatch)
    config = tmp_path / "tiny.toml"
    config.write_text(f'personas_dir = "{CATALOG / "personas"}"\nscenarios_dir = "{CATALOG / "scenarios"}"\n'
                      "[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n"
                      "[model]\nretries = 1\ntimeout_s = 60\n")
    model_flags = ["--config", str(config), "--backend", "openai", "--api-base", llama_server, "--model", "x"]
    out = tmp_path / "corpus"
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(out), *model_flags])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    # The server's 500 on json_schema was read as a refusal, once, and json_object with the schema used after.
    assert manifest["structured_output"] == {"generator": "json_object_schema", "judge": "json_object_schema"}
    records = [json.loads(line) for name in ("dialogues.jsonl", "rejected.jsonl")
               for line in (out / name).read_text().splitlines()]
    assert len(records) == 1
    failed = [r for r in records if set(r.get("reasons", [])) & {"generation_failed", "judge_failed"}]
    assert not failed, failed[0].get("detail")
    # max_tokens went along: the 120-token cap held on a server that ignores max_completion_tokens.
    assert manifest["usage"]["seeker"]["output_tokens"] <= 120 * manifest["usage"]["seeker"]["calls"]

    source = tmp_path / "one.jsonl"
    source.write_text(make_dialogue(["I failed my driving test again today.",
                                     "That sounds really discouraging. What happened on the test?"])
                      .model_dump_json() + "\n")
    scored = tmp_path / "scores.jsonl"
    result = runner.invoke(app, ["judge", str(source), "--out", str(scored), *model_flags])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in scored.read_text().splitlines()]
    assert "error" not in row, row
    assert 0 <= row["scores"]["sensibility"] <= 10
