import json
import re

import pytest
from scripted import PROSE, ScriptedEngine, scripted_lm, varied_prose

from synth_empathy.config import load_config
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE, REJECTED_FILE
from synth_empathy.errors import RunError, UserError
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Dialogue, Manifest, Rejection

GOOD_JUDGE = {"JudgeDialogue": {"sensibility": 8, "rationality": 7, "rationale": "Warm and specific."}}




def _generate(tmp_path, overrides, n=3, judge=GOOD_JUDGE, prose=None, **kw):
    # One dialogue at a time unless a test asks for more: the scripted prose is one random stream, drawn in the
    # order calls are made, and the local backend's default of 4 in flight would make that order vary.
    cfg = load_config(None, {"n": n, "concurrency": 1, "dialogue": {"max_turns": 2, "min_turns": 1}, **overrides})
    gen = kw.pop("generator_engine", None) or ScriptedEngine(prose=prose or varied_prose())
    return run_generate(cfg, tmp_path / "out", generator_lm=scripted_lm(gen),
                        judge_lm=scripted_lm(ScriptedEngine(structured=judge)), **kw)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_writes_valid_kept_rejected_manifest_and_card(tmp_path, small_catalog_overrides):
    manifest = _generate(tmp_path, small_catalog_overrides, n=3)
    out = tmp_path / "out"
    kept = [Dialogue.model_validate(r) for r in _records(out / KEPT_FILE)]
    rejected = [Rejection.model_validate(r) for r in _records(out / REJECTED_FILE)]
    assert len(kept) + len(rejected) == 3 and len(kept) >= 1
    assert Manifest.model_validate_json((out / MANIFEST_FILE).read_text()).counts["kept"] == len(kept)
    assert manifest.usage["judge"].calls == len(kept) + sum(r.stage == "judge" for r in rejected)
    assert manifest.usage["seeker"].input_tokens > 0
    assert "Synthetic empathetic dialogues" in (out / "README.md").read_text()
    d = kept[0]
    assert d.scores.sensibility == 8 and d.provenance.config_fingerprint == manifest.config_fingerprint


def test_rerun_into_the_same_folder_resumes_without_duplicates(tmp_path, small_catalog_overrides):
    _generate(tmp_path, small_catalog_overrides, n=2)
    _generate(tmp_path, small_catalog_overrides, n=4, resume=True)
    out = tmp_path / "out"
    ids = [r["id"] for r in _records(out / KEPT_FILE) + _records(out / REJECTED_FILE)]
    assert len(ids) == 4 == len(set(ids))


def test_torn_last_line_is_repaired_on_resume(tmp_path, small_catalog_overrides):
    _generate(tmp_path, small_catalog_overrides, n=2)
    kept = tmp_path / "out" / KEPT_FILE
    lines = kept.read_text().splitlines(keepends=True)
    kept.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # crash mid-write
    _generate(tmp_path, small_catalog_overrides, n=2)
    records = _records(kept) + _records(tmp_path / "out" / REJECTED_FILE)
    assert len({r["id"] for r in records}) == 2 == len(records)


def test_a_different_config_refuses_to_mix_into_the_folder(tmp_path, small_catalog_overrides):
    _generate(tmp_path, small_catalog_overrides, n=1)
    with pytest.raises(UserError, match="different config"):
        _generate(tmp_path, {**small_catalog_overrides, "seed": 5}, n=1)


def test_resume_without_an_earlier_run_is_refused(tmp_path, small_catalog_overrides):
    with pytest.raises(UserError, match="no earlier run"):
        _generate(tmp_path, small_catalog_overrides, n=1, resume=True)


def test_failed_generation_is_a_rejection_with_the_error_never_a_placeholder(tmp_path, small_catalog_overrides):
    broken = ScriptedEngine(fail_on={"ChooseStrategy"})
    with pytest.raises(RunError, match="all 2 dialogues"):
        _generate(tmp_path, small_catalog_overrides, n=2, generator_engine=broken)
    rejected = _records(tmp_path / "out" / REJECTED_FILE)
    assert [r["reasons"] for r in rejected] == [["generation_failed"]] * 2
    assert "scripted failure in ChooseStrategy" in rejected[0]["detail"]
    assert not (tmp_path / "out" / KEPT_FILE).read_text()


def test_judge_failure_is_recorded_with_the_dialogue(tmp_path, small_catalog_overrides):
    _generate(tmp_path, small_catalog_overrides, n=1, judge={"JudgeDialogue": {"sensibility": 99}})
    (rejection,) = _records(tmp_path / "out" / REJECTED_FILE)
    assert rejection["stage"] == "judge" and rejection["reasons"] == ["judge_failed"]
    assert rejection["dialogue"]["turns"]


def test_low_scores_are_rejected_with_reason_codes(tmp_path, small_catalog_overrides):
    low = {"JudgeDialogue": {"sensibility": 3, "rationality": 9}}
    manifest = _generate(tmp_path, small_catalog_overrides, n=2, judge=low)
    assert manifest.rejection_reasons == {"low_sensibility": 2}
    assert all(r["dialogue"]["scores"]["sensibility"] == 3 for r in _records(tmp_path / "out" / REJECTED_FILE))


def test_identical_dialogues_are_deduplicated(tmp_path, small_catalog_overrides):
    def prose(messages):  # the same conversation for every seed: the line depends only on the turn number
        said = re.findall(r"\b(?:You|Listener|Seeker|Supporter): ", messages[-1]["content"])
        return PROSE[len(said) % len(PROSE)]

    manifest = _generate(tmp_path, small_catalog_overrides, n=3, prose=prose)
    assert manifest.counts["kept"] >= 1
    assert manifest.rejection_reasons.get("exact_duplicate", 0) + manifest.rejection_reasons.get(
        "near_duplicate", 0) >= 1


def test_an_embedded_judge_is_said_to_be_no_evidence_of_quality(tmp_path, small_catalog_overrides):
    manifest = _generate(tmp_path, small_catalog_overrides, n=1)
    assert "not evidence of quality" in manifest.judge_caveat and "--judge-model" in manifest.judge_caveat
    saved = Manifest.model_validate_json((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert saved.judge_caveat == manifest.judge_caveat
    assert "The scores are not evidence of quality." in (tmp_path / "out" / "README.md").read_text()
