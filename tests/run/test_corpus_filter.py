import json
from pathlib import Path

import pytest
from builders import GOOD_TEXTS, make_dialogue, scores
from conftest import DATA
from fake_openai import FakeOpenAIServer, default_responder
from scripted import ScriptedEngine, scripted_lm
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import load_config
from synth_empathy.filters.agreement import cohen_kappa, spearman
from synth_empathy.run.corpus_filter import efficient_empathy_split, run_filter, threshold_sweep

runner = CliRunner()


def _corpus(tmp_path: Path) -> Path:
    dialogues = [
        make_dialogue(GOOD_TEXTS, ident="a"),
        make_dialogue(GOOD_TEXTS, ident="b"),  # an exact duplicate of a
        make_dialogue(GOOD_TEXTS[:3] + ["As an AI language model I cannot feel, but that sounds hard."], ident="c"),
        make_dialogue([t.replace("warehouse", "bakery").replace("sister", "brother") + " Really." for t in
                       GOOD_TEXTS[:2]] + ["It is the late rent on top of everything else this month, honestly.",
                                          "Late rent on top of losing the job would flatten anyone."], ident="d"),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(d.model_dump_json() + "\n" for d in dialogues))
    return path


def test_filter_runs_rules_dedup_and_judge_over_a_corpus(tmp_path):
    judge = scripted_lm(ScriptedEngine(structured={"JudgeDialogue": {"sensibility": 7, "rationality": 5}}))
    cfg = load_config(None, {"judge": {"min_rationality": 4}})
    manifest, sweep = run_filter(cfg, _corpus(tmp_path), tmp_path / "out", judge, "scripted", select=6)
    assert manifest.counts == {"planned": 4, "kept": 2, "rejected": 2}
    assert manifest.rejection_reasons == {"ai_disclosure": 1, "exact_duplicate": 1}
    assert sweep["grid"][7][5] == 2 and sweep["grid"][8][0] == 0
    select = tmp_path / "out" / "select"
    assert len((select / "sensibility.jsonl").read_text().splitlines()) == 2  # 7 > 6
    assert (select / "rationality.jsonl").read_text() == ""  # 5 is not > 6
    assert (tmp_path / "out" / "README.md").exists()


def test_filter_refuses_to_write_over_a_corpus(tmp_path):
    judge = scripted_lm(ScriptedEngine())
    run_filter(load_config(), _corpus(tmp_path), tmp_path / "out", judge, "scripted")
    with pytest.raises(Exception, match="already holds a corpus"):
        run_filter(load_config(), _corpus(tmp_path), tmp_path / "out", judge, "scripted")


def test_efficient_empathy_split_uses_strict_inequalities():
    ds = [make_dialogue(GOOD_TEXTS, ident=i, scores=scores(s, r)) for i, s, r in
          [("x", 6, 6), ("y", 6.5, 2), ("z", 1, 9)]]
    split = efficient_empathy_split(ds, threshold=6)
    assert [d.id for d in split["sensibility"]] == ["y"]
    assert [d.id for d in split["rationality"]] == ["z"]
    assert [d.id for d in split["discard"]] == ["x"]


def test_sweep_counts_by_emotion():
    ds = [(make_dialogue(GOOD_TEXTS, ident="1", emotion="sad"), scores(8, 8)),
          (make_dialogue(GOOD_TEXTS, ident="2", emotion="proud"), scores(5, 9))]
    sweep = threshold_sweep(ds)
    assert sweep["emotion"]["sad"][8] == 1 and sweep["emotion"]["proud"][6] == 0
    assert sweep["grid"][5][5] == 2


def test_agreement_metrics():
    assert cohen_kappa([0, 1, 2, 2], [0, 1, 2, 2]) == 1.0
    assert abs(cohen_kappa([0, 1, 2, 2, 1, 0, 2], [0, 1, 2, 1, 1, 0, 2]) - 0.7879) < 1e-3
    assert spearman([0, 1, 2], [2, 1, 0]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [0, 1, 2]) is None


def _fixed_levels(level: int):
    def responder(body: dict) -> str:
        data = json.loads(default_responder(body))
        data.update(emotional_reactions=level, sensibility=7, rationality=7)
        return json.dumps(data)
    return responder


def test_judge_eval_cli_reports_agreement_on_an_epitome_file(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer(responder=_fixed_levels(2)) as server:
        result = runner.invoke(app, ["judge-eval", str(DATA / "epitome" / "emotional-reactions-sample.csv"),
                                     "--format", "epitome", "--json", "--backend", "openai", "--model", "j",
                                     "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    er = json.loads(result.output[result.output.index("{"):])["mechanisms"]["er"]
    assert er["n"] == 6 and er["accuracy"] == pytest.approx(2 / 6, abs=1e-3) and er["spearman"] is None


def test_judge_eval_needs_a_mechanism_it_can_name(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text((DATA / "epitome" / "emotional-reactions-sample.csv").read_text())
    result = runner.invoke(app, ["judge-eval", str(path)])
    assert result.exit_code == 2 and "--mechanism" in result.output


def test_judge_and_dedup_commands_on_an_imported_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ed = DATA / "import" / "ed_sample.csv"
    result = runner.invoke(app, ["dedup", str(ed), "--out", str(tmp_path / "kept.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kept.bad_rows.jsonl").read_text().count("\n") == 1
    with FakeOpenAIServer(responder=_fixed_levels(1)) as server:
        result = runner.invoke(app, ["judge", str(tmp_path / "kept.csv"), "--out", str(tmp_path / "s.csv"),
                                     "--backend", "openai", "--model", "j", "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "s.scores.jsonl").read_text().splitlines()]
    assert records and all(r["scores"]["er"] == 1 and r["id"].startswith("hit:") for r in records)
