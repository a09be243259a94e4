"""--max-cost: no dialogue starts that could pass the cap; the run ends resumable and the manifest says so."""

import json

import pytest
from runs import all_records, responder, run_config
from test_cli import _config, _one_sentence_error, runner

from synth_empathy.cli import app
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.errors import UserError
from synth_empathy.run.generate import run_generate

PRICES = {"prices": {"m": {"input": 1000.0, "output": 2000.0}}}  # dear, so a dialogue costs cents


@pytest.fixture
def server(fake_openai):
    fake_openai.responder = responder
    return fake_openai


def test_the_cap_stops_the_run_before_the_next_dialogue_would_pass_it_and_a_higher_cap_resumes(server, tmp_path):
    measured = run_generate(run_config(server, 6, PRICES), tmp_path / "measure")
    per_dialogue = measured.cost_usd / 6
    cap = 2.5 * per_dialogue
    out = tmp_path / "out"
    first = run_generate(run_config(server, 6, {**PRICES, "concurrency": 4}), out, max_cost=cap)
    assert first.budget["stopped"] is True and first.finished is None
    assert first.budget["max_cost_usd"] == cap and first.budget["spent_usd"] == first.cost_usd <= cap
    written = len(all_records(out))
    assert 1 <= written < 6  # a third dialogue at the running average would pass 2.5 dialogues' worth
    assert first.counts["kept"] + first.counts["rejected"] == written

    second = run_generate(run_config(server, 6, {**PRICES, "concurrency": 4}), out, resume=True, max_cost=100 * cap)
    assert second.budget["stopped"] is False and second.finished is not None
    ids = [r["id"] for r in all_records(out)]
    assert len(ids) == len(set(ids)) == 6
    assert second.budget["spent_usd"] == pytest.approx(second.cost_usd)


def test_a_cap_already_spent_starts_nothing(server, tmp_path):
    out = tmp_path / "out"
    first = run_generate(run_config(server, 2, PRICES), out)
    calls = len(server.chat_requests)
    again = run_generate(run_config(server, 4, PRICES), out, max_cost=first.cost_usd / 2)
    assert again.budget["stopped"] and len(server.chat_requests) == calls and len(all_records(out)) == 2


def test_a_cap_without_a_price_is_bad_input(server, tmp_path):
    with pytest.raises(UserError, match=r"--max-cost needs \[prices\] for model m"):
        run_generate(run_config(server, 1), tmp_path / "out", max_cost=1.0)
    assert not list((tmp_path / "out").glob("*.json*"))  # nothing written (the lock file may stay)


def test_cli_says_the_budget_stopped_the_run_in_one_line_and_exits_0(server, tmp_path, monkeypatch):
    body = ('[model]\nbackend = "openai"\nmodel = "m"\napi_base = "' + server.base_url + '"\n'
            '[prices.m]\ninput = 1000.0\noutput = 2000.0\n')
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "-n", "4", "--out", str(out), "--config", _config(tmp_path, body),
                                 "--max-cost", "0.000001"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("budget reached:")]
    assert len(lines) == 1 and "higher --max-cost" in lines[0]
    assert json.loads((out / "manifest.json").read_text())["budget"]["stopped"] is True
    assert read_manifest(out).finished is None


def test_cli_max_cost_without_prices_is_one_sentence_exit_2(server, tmp_path):
    body = '[model]\nbackend = "openai"\nmodel = "m"\napi_base = "' + server.base_url + '"\n'
    result = runner.invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--config",
                                 _config(tmp_path, body), "--max-cost", "5"])
    _one_sentence_error(result, 2, "--max-cost needs [prices] for model m")
