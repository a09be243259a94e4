"""Seeds that fail during an outage are tried again on resume; one outcome per seed everywhere after."""

import json

import pytest
from runs import records, responder, run_config
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.store import MANIFEST_FILE, REJECTED_FILE, tally_records
from synth_empathy.errors import RunError
from synth_empathy.publish.exports import export_corpus
from synth_empathy.publish.stats import stats_for_dir
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Manifest

runner = CliRunner()


def _outage(server) -> None:
    server.fault_rates = {"500": 1.0}


def test_after_an_outage_a_resume_against_a_healthy_endpoint_keeps_every_seed(fake_openai, tmp_path):
    fake_openai.responder = responder
    _outage(fake_openai)
    cfg, out = run_config(fake_openai, 4), tmp_path / "o"
    with pytest.raises(RunError, match="all 4 dialogues of this run failed"):
        run_generate(cfg, out)
    manifest = Manifest.model_validate_json((out / MANIFEST_FILE).read_text())
    assert manifest.finished is None and manifest.counts["to_retry"] == 4

    fake_openai.fault_rates = {}
    manifest = run_generate(cfg, out, resume=True)
    kept, rejected = records(out)
    assert len(kept) == 4 and {r.reasons[0] for r in rejected} == {"generation_failed"}  # the history stays
    assert manifest.finished is not None
    assert manifest.counts == {"planned": 4, "kept": 4, "rejected": 0, "this_run": 4, "to_retry": 0}
    assert manifest.rejection_reasons == {}
    stats = stats_for_dir(out)["counts"]
    assert (stats["kept"], stats["rejected"], stats["finished"]) == (4, 0, 4)  # one outcome per seed, not 8
    assert export_corpus(out, "openai", tmp_path / "train.jsonl").dialogues == 4
    assert (tally_records(out).kept, tally_records(out).rejected) == (4, 0)


def test_a_seed_is_tried_at_most_max_attempts_times(fake_openai, tmp_path):
    fake_openai.responder = responder
    _outage(fake_openai)
    cfg, out = run_config(fake_openai, 2, {"run": {"max_attempts": 2}}), tmp_path / "o"
    for _ in range(2):
        with pytest.raises(RunError):
            run_generate(cfg, out, resume=out.exists())
    calls = fake_openai.counters["chat_completions"]
    manifest = run_generate(cfg, out, resume=True)  # both seeds spent their attempts: nothing is retried
    assert fake_openai.counters["chat_completions"] == calls
    lines = [json.loads(line) for line in (out / REJECTED_FILE).read_text().splitlines()]
    assert len(lines) == 4 and manifest.counts["rejected"] == 2 and manifest.counts["to_retry"] == 0


def test_the_cli_exits_1_when_every_call_failed_and_rerunning_retries_the_seeds(fake_openai, tmp_path):
    fake_openai.responder = responder
    _outage(fake_openai)
    cfg = tmp_path / "run.toml"
    c = run_config(fake_openai, 3)
    cfg.write_text(f'personas_dir = "{c.personas_dir}"\nscenarios_dir = "{c.scenarios_dir}"\n'
                   "[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n"
                   f'[model]\nbackend = "openai"\nmodel = "m"\napi_base = "{fake_openai.base_url}"\n'
                   "backoff_s = 0.01\nretries = 0\n")
    out = tmp_path / "o"
    result = runner.invoke(app, ["generate", "-n", "3", "--out", str(out), "--config", str(cfg)])
    assert result.exit_code == 1 and "failed to generate" in result.output
    assert Manifest.model_validate_json((out / MANIFEST_FILE).read_text()).finished is None
    fake_openai.fault_rates = {}
    result = runner.invoke(app, ["generate", "-n", "3", "--out", str(out), "--config", str(cfg)])
    assert result.exit_code == 0 and "3 kept, 0 rejected of 3 planned" in result.output
