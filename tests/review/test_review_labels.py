"""The label store (DIR/labels.jsonl) and the review order."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest
from builders import GOOD_TEXTS, make_dialogue
from review_corpus import label, make_review_corpus

from synth_empathy.corpus.store import KEPT_FILE
from synth_empathy.errors import UserError
from synth_empathy.filters.calibration import latest_labels
from synth_empathy.review.items import ReviewItem, keep_thresholds, load_items
from synth_empathy.review.labels import LABELS, LabelStore, read_labels
from synth_empathy.review.order import review_order
from synth_empathy.schema import Scores

THRESHOLDS = {"sensibility": 6.0, "rationality": 6.0}


def test_append_writes_one_fsynced_line_per_label_and_reads_them_back(tmp_path):
    store = LabelStore(tmp_path)
    store.append(label("d1", sensibility=7))
    store.append(label("d1", reviewer="ben", keep=False, rationality=3))
    lines = (tmp_path / LABELS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["ratings"]["sensibility"] == 7
    assert [(x.reviewer, x.keep) for x in read_labels(tmp_path / LABELS)] == [("ana", True), ("ben", False)]


def test_a_torn_last_line_is_cut_when_the_store_opens(tmp_path):
    LabelStore(tmp_path).append(label("d1"))
    with open(tmp_path / LABELS, "a", encoding="utf-8") as f:
        f.write('{"dialogue_id": "d2", "revie')  # a crash mid-write
    store = LabelStore(tmp_path)
    store.append(label("d3"))
    assert [x.dialogue_id for x in store.read()] == ["d1", "d3"]


def test_concurrent_appends_from_threads_never_interleave(tmp_path):
    store = LabelStore(tmp_path)
    long_note = "x" * 20_000  # longer than one write() buffer, so interleaving would show
    threads = [threading.Thread(target=lambda i=i: [store.append(label(f"d{i}-{k}").model_copy(
        update={"note": long_note})) for k in range(10)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.read()) == 40


def _append_many(folder: str, reviewer: str) -> None:
    store = LabelStore(Path(folder))
    for k in range(15):
        store.append(label(f"d{k}", reviewer=reviewer).model_copy(update={"note": "y" * 30_000}))


def test_two_processes_appending_to_one_folder_keep_every_line_whole(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), name)) for name in ("ana", "ben")]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    labels = read_labels(tmp_path / LABELS)
    assert sorted(x.reviewer for x in labels) == ["ana"] * 15 + ["ben"] * 15


def test_the_last_label_of_a_reviewer_wins_and_other_reviewers_stay():
    first = label("d1", keep=True, time="t1")
    other = label("d1", reviewer="ben", keep=False)
    again = label("d1", keep=False, time="t2")
    assert latest_labels([first, other, again]) == [other, again]


def test_a_bad_label_line_is_one_error_naming_the_line(tmp_path):
    (tmp_path / LABELS).write_text('{"dialogue_id": "d1", "reviewer": "a", "time": "t", "keep": "maybe"}\n')
    with pytest.raises(UserError, match=r"labels.jsonl record 1 is not a label: keep"):
        read_labels(tmp_path / LABELS)


def test_an_unknown_failure_flag_is_refused():
    with pytest.raises(ValueError, match="unknown failure flag"):
        label("d1", failures={"rudeness": True})


def _item(ident: str, s: float | None, r: float = 9.0, spread: dict | None = None) -> ReviewItem:
    sc = None if s is None else Scores(sensibility=s, rationality=r, er=1, ip=1, ex=1, spread=spread)
    return ReviewItem(make_dialogue(GOOD_TEXTS, ident=ident, scores=sc), "kept")


def test_close_calls_come_first_closest_first_then_a_seeded_shuffle():
    items = [_item("far1", 9.5), _item("near", 6.5), _item("edge", 6.0), _item("unscored", None),
             _item("far2", 1.0), _item("split", 9.0, spread={"sensibility": 4.0}), _item("far3", 3.0),
             _item("below", 5.2)]
    order = review_order(items, THRESHOLDS, seed=0)
    ids = [it.id for it in order]
    # edge: on the threshold (0); near: 0.5 away; below: 0.8 away; split: 3 away but samples 4 apart (3 - 2 = 1)
    assert ids[:4] == ["edge", "near", "below", "split"]
    assert [it.why for it in order[:4]] == ["near threshold"] * 3 + ["judge samples disagree"]
    assert set(ids[4:]) == {"far1", "far2", "far3", "unscored"} and {it.why for it in order[4:]} == {"random"}
    assert ids == [it.id for it in review_order(list(reversed(items)), THRESHOLDS, seed=0)]
    shuffles = {tuple(it.id for it in review_order(items, THRESHOLDS, seed=s))[4:] for s in range(8)}
    assert len(shuffles) > 1


def test_rationality_near_its_threshold_is_a_close_call_too():
    order = review_order([_item("a", 9.0, r=9.0), _item("b", 9.0, r=6.4)], THRESHOLDS)
    assert order[0].id == "b" and order[0].why == "near threshold"


def test_load_items_reads_kept_and_rejected_dialogues_and_the_run_thresholds(tmp_path):
    corpus = make_review_corpus(tmp_path / "run", n=6, rejected=8)
    items = load_items(corpus)
    stages = [it.stage for it in items]
    assert stages.count("kept") == 6
    assert {"rules", "dedup", "judge"} <= set(stages) and "generate" not in stages  # a failed seed has no dialogue
    assert keep_thresholds(corpus) == {"sensibility": 6.0, "rationality": 6.0}
    with pytest.raises(UserError, match="holds no dialogues.jsonl"):
        load_items(tmp_path)
    assert (corpus / KEPT_FILE).exists()
