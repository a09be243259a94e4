"""Calibration: the agreement math on hand-computed cases, threshold proposals, the calibrate command, and the
figures in the manifest, stats, the report and the card."""

from __future__ import annotations

import json
import tomllib

import pytest
from review_corpus import label, make_review_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import CARD_FILE
from synth_empathy.filters.agreement import quadratic_kappa, spearman
from synth_empathy.filters.calibration import agreement, calibrate, propose_thresholds
from synth_empathy.publish.report import write_report
from synth_empathy.publish.stats import stats_for_dir
from synth_empathy.review.labels import LabelStore
from synth_empathy.schema import Scores

CURRENT = {"sensibility": 6.0, "rationality": 6.0}


def _s(sens: float, rat: float, er: float = 1, **failures: bool) -> Scores:
    return Scores(sensibility=sens, rationality=rat, er=er, ip=1, ex=1, failures=failures)


def test_quadratic_kappa_by_hand():
    # observed sum of squares 1; expected (all 9 pairs) 15 / 3 = 5; kappa = 1 - 1/5
    assert quadratic_kappa([0, 1, 2], [0, 2, 2]) == pytest.approx(0.8)
    assert quadratic_kappa([3, 3], [3, 3]) == 1.0
    assert quadratic_kappa([0, 10], [10, 0]) == pytest.approx(-1.0)  # 200 observed, 100 expected


def test_a_miss_by_two_costs_more_than_a_miss_by_one():
    gold = [2, 4, 6, 8]
    assert quadratic_kappa(gold, [3, 4, 6, 8]) > quadratic_kappa(gold, [4, 4, 6, 8])


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)


def test_judge_scores_are_rounded_to_levels_for_kappa_and_accuracy_and_ranked_raw():
    fig = agreement([7, 8, 2], [7.5, 7.6, 2.4], ordinal=True, resamples=0)
    assert fig["accuracy"] == pytest.approx(2 / 3, abs=1e-4)  # 7.5 -> 8 misses 7; 7.6 -> 8 hits; 2.4 -> 2 hits
    assert fig["kappa"] == pytest.approx(quadratic_kappa([7, 8, 2], [8, 8, 2]), abs=1e-4)
    assert fig["spearman"] == pytest.approx(1.0)


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    gold = [0, 1, 2, 2, 1, 0, 2, 1, 1, 0]
    pred = [0, 1, 2, 1, 1, 0, 2, 2, 1, 1]
    a = agreement(gold, pred, ordinal=True, resamples=300, seed=3)
    assert a == agreement(gold, pred, ordinal=True, resamples=300, seed=3)
    assert a["kappa_ci"] != agreement(gold, pred, ordinal=True, resamples=300, seed=4)["kappa_ci"]
    lo, hi = a["kappa_ci"]
    assert lo <= a["kappa"] <= hi and lo < hi
    assert agreement([1], [1], ordinal=True)["kappa_ci"] is None  # one pair: no interval


def test_proposed_thresholds_match_the_human_decisions_with_the_smallest_move():
    rows = [(_s(8, 8), True), (_s(7, 7), True), (_s(5, 9), False), (_s(6.5, 4), False), (_s(6, 7), False)]
    p = propose_thresholds(rows, CURRENT)
    # (6, 7) must be rejected, (7, 7) kept: only min_sensibility in {6.5, 7} does it; 6.5 is the smaller move
    assert (p["min_sensibility"], p["min_rationality"]) == (6.5, 6.0)
    assert p["accuracy"] == 1.0 and p["current"]["accuracy"] == 0.8
    assert propose_thresholds([], CURRENT) is None


def test_calibrate_counts_each_reviewers_last_label_and_measures_inter_reviewer_agreement():
    scores = {"a": _s(8, 8, er=2, sentiment_attenuation=False), "b": _s(4, 5, er=0, sentiment_attenuation=True),
              "c": _s(7, 9, er=1)}
    labels = [label("a", keep=False, sensibility=2), label("a", keep=True, sensibility=8, er=2,
                                                            failures={"sentiment_attenuation": False}),
              label("b", keep=False, sensibility=4, er=0, failures={"sentiment_attenuation": True}),
              label("c", keep=False, sensibility=6),
              label("a", reviewer="ben", keep=True, sensibility=7),
              label("unscored", keep=True), label("unscored", reviewer="ben", keep=False)]
    ha = calibrate(labels, scores, CURRENT, resamples=50)
    assert ha["labels"] == 6 and ha["dialogues"] == 4 and ha["judged_labels"] == 4
    assert ha["reviewers"] == ["ana", "ben"]
    assert ha["judge"]["sensibility"]["n"] == 4 and ha["judge"]["er"]["n"] == 2
    assert ha["judge"]["sentiment_attenuation"] == ha["judge"]["sentiment_attenuation"] | {"n": 2, "accuracy": 1.0}
    # judge keeps a, c (>= 6) and ben's a; people keep a twice and reject b, c
    assert ha["keep"]["confusion"] == {"both_keep": 2, "human_keep_judge_reject": 0, "human_reject_judge_keep": 1,
                                       "both_reject": 1}
    assert ha["keep"]["accuracy"] == 0.75
    inter = ha["inter_reviewer"]
    assert inter["pairs"] == 2 and inter["keep"]["n"] == 2 and inter["keep"]["accuracy"] == 0.5
    assert inter["sensibility"]["n"] == 1  # only dialogue a has a sensibility from both
    # c (7, 9) is rejected only by min_sensibility > 7 and a (8, 8) kept: 7.5 is the smaller move
    assert (ha["proposed_thresholds"]["min_sensibility"], ha["proposed_thresholds"]["min_rationality"]) == (7.5, 6)


def _labelled_corpus(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    store = LabelStore(corpus)
    for i, d in enumerate(read_dialogues(corpus / "dialogues.jsonl")[:8]):
        keep = d.scores.sensibility >= 8
        store.append(label(d.id, keep=keep, sensibility=round(d.scores.sensibility), rationality=i % 11, er=1))
        if i < 3:
            store.append(label(d.id, reviewer="ben", keep=keep, sensibility=5))
    return corpus


def test_calibrate_command_records_the_figures_everywhere_and_writes_thresholds(tmp_path):
    corpus = _labelled_corpus(tmp_path)
    assert "The judge is uncalibrated" in stats_text(corpus)
    config = tmp_path / "run.toml"
    config.write_text("seed = 3\n\n[judge]\n# keep these\nsamples = 3\nmin_sensibility = 6.0\n\n"
                      "[dedup]\nthreshold = 0.7\n")
    result = CliRunner().invoke(app, ["calibrate", str(corpus), "--write-config", str(config), "--resamples", "50"])
    assert result.exit_code == 0, result.output
    assert "judge vs human" in result.output and "reviewer vs reviewer" in result.output
    ha = read_manifest(corpus).human_agreement
    assert ha["labels"] == 11 and ha["inter_reviewer"]["pairs"] == 3
    assert ha["proposed_thresholds"]["min_sensibility"] in (7.5, 8.0)
    written = tomllib.loads(config.read_text())
    assert written["judge"] == {"samples": 3, "min_sensibility": ha["proposed_thresholds"]["min_sensibility"],
                                "min_rationality": ha["proposed_thresholds"]["min_rationality"]}
    assert written["seed"] == 3 and written["dedup"] == {"threshold": 0.7} and "# keep these" in config.read_text()
    stats = stats_for_dir(corpus)
    assert stats["human_agreement"] == ha
    assert "judge vs human" in stats_text(corpus)
    card = (corpus / CARD_FILE).read_text()
    assert f"Judge agreement with {ha['keep']['n']} human labels" in card and "uncalibrated" not in card
    page = write_report(corpus, tmp_path / "report.html").read_text()
    assert 'id="keep-confusion"' in page and "Judge agreement with people" in page
    as_json = CliRunner().invoke(app, ["calibrate", str(corpus), "--json", "--resamples", "0"])
    assert json.loads(as_json.output)["keep"]["n"] == ha["keep"]["n"]


def stats_text(corpus) -> str:
    return CliRunner().invoke(app, ["stats", str(corpus)]).output


def test_without_labels_the_report_says_the_judge_is_uncalibrated(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    page = write_report(corpus, tmp_path / "report.html").read_text()
    assert "The judge is uncalibrated" in page


def test_calibrate_refuses_a_folder_without_labels_and_foreign_labels(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    result = CliRunner().invoke(app, ["calibrate", str(corpus)])
    assert result.exit_code == 2 and "holds no labels yet" in result.output
    LabelStore(corpus).append(label("not-here"))
    result = CliRunner().invoke(app, ["calibrate", str(corpus)])
    assert result.exit_code == 2 and "does not hold" in result.output


def test_judge_eval_with_labels_gives_the_same_figures_as_calibrate(tmp_path):
    corpus = _labelled_corpus(tmp_path)
    calibrated = json.loads(CliRunner().invoke(app, ["calibrate", str(corpus), "--json"]).output)
    result = CliRunner().invoke(app, ["judge-eval", str(corpus / "labels.jsonl"), "--format", "labels", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)
    assert {k: v for k, v in evaluated.items() if k != "computed"} == {
        k: v for k, v in calibrated.items() if k != "computed"}
