"""--dry-run: calls, tokens, time and cost per stage for the whole plan, from a pilot or --out's manifest."""

import re

import pytest
from runs import responder, run_config
from test_cli import _config, runner

from synth_empathy.cli import app
from synth_empathy.run.generate import run_generate


@pytest.fixture
def server(fake_openai):
    fake_openai.responder = responder
    return fake_openai


def _body(server) -> str:
    """Appended under _config's [dialogue]: one exchange, no critique, the fake endpoint, a price."""
    return ('critique_rounds = 0\n[model]\nbackend = "openai"\nmodel = "m"\napi_base = "' + server.base_url +
            '"\nbackoff_s = 0.01\ntimeout_s = 2\n[prices.m]\ninput = 1.0\noutput = 2.0\n')


def _row(output: str, name: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [name]]
    return line.split()


def test_generate_dry_run_pilots_three_seeds_scales_to_the_plan_and_writes_nothing(server, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "-n", "30", "--out", str(out), "--dry-run", "--config",
                                 _config(tmp_path, _body(server))])
    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert "pilot of 3 dialogues" in result.output and "scaled to 30 dialogues" in result.output
    pilot_calls = sum(r.status == 200 for r in server.chat_requests)
    total = _row(result.output, "total")
    assert int(total[1]) == pilot_calls * 10  # the pilot's calls, scaled from 3 dialogues to 30
    assert {"seeker", "supporter", "judge"} <= {line.split()[0] for line in result.output.splitlines()}
    assert float(total[5]) > 0 and re.search(r"time: about .+ at concurrency \d+", result.output)


def test_generate_dry_run_uses_the_manifest_in_out_without_a_call(server, tmp_path):
    out = tmp_path / "out"
    manifest = run_generate(run_config(server, 2, {"prices": {"m": {"input": 1.0, "output": 2.0}}}), out)
    before = sorted(p.name for p in out.iterdir()), (out / "manifest.json").read_bytes()
    calls = len(server.chat_requests)
    result = runner.invoke(app, ["generate", "-n", "8", "--out", str(out), "--config", _config(tmp_path, _body(server)),
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert len(server.chat_requests) == calls
    assert (sorted(p.name for p in out.iterdir()), (out / "manifest.json").read_bytes()) == before
    assert "measured over the 2 dialogues" in result.output
    judge = _row(result.output, "judge")
    assert int(judge[1]) == manifest.usage["judge"].calls * 4
    assert float(_row(result.output, "total")[5]) == pytest.approx(manifest.cost_usd * 4, rel=1e-4)
