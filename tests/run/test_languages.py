"""Runs in other languages: the prompts ask for the language, the rules check it, dedup and stats read its words."""

import json
import random

import pytest
from scripted import ScriptedEngine, scripted_lm, varied_prose
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import DedupConfig, load_config
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE
from synth_empathy.filters.dedup import dedup_dialogues
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.sampler import plan_for
from synth_empathy.publish.stats import stats_for_dir
from synth_empathy.run.generate import run_generate
from synth_empathy.schema import Dialogue
from synth_empathy.text import word_count, words

GOOD_JUDGE = {"JudgeDialogue": {"sensibility": 8, "rationality": 7, "rationale": "Cálido y concreto."}}


def spanish_prose(seed: int = 0):
    rng = random.Random(seed)
    things = ("el alquiler|mi hermana|el almacén|la noche|el turno|el dinero|la llamada|mi jefe|la carta|"
              "la cocina").split("|")
    return lambda messages: ("No puedo dejar de pensar en " + " y en ".join(rng.sample(things, 4))
                             + ", y me siento muy cansada.")


def chinese_prose(seed: int = 0):
    rng = random.Random(seed)
    things = "房租 姐姐 仓库 夜班 工资 电话 老板 信件 厨房 睡眠 考试 朋友".split()
    return lambda messages: "我一直在想" + "和".join(rng.sample(things, 4)) + "的事情，心里很难受。"


def _run(tmp_path, overrides, prose, n=3):
    # One dialogue at a time: the scripted prose draws from one random stream, in the order calls are made.
    cfg = load_config(None, {"n": n, "concurrency": 1, "dialogue": {"max_turns": 2, "min_turns": 1}, **overrides})
    generator = ScriptedEngine(prose=prose)
    manifest = run_generate(cfg, tmp_path / "out", generator_lm=scripted_lm(generator),
                            judge_lm=scripted_lm(ScriptedEngine(structured=GOOD_JUDGE)))
    return manifest, generator


def _records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _prose_prompts(engine):
    return [" ".join(m.text or "" for m in r.messages) for r in engine.requests if r.config.response_format is None]


@pytest.mark.parametrize(("code", "prose", "native"), [("es", spanish_prose(), "español"),
                                                        ("zh", chinese_prose(), "中文")])
def test_a_run_in_another_language_asks_for_it_passes_the_rules_and_the_stats(tmp_path, small_catalog_overrides,
                                                                               code, prose, native):
    manifest, generator = _run(tmp_path, {**small_catalog_overrides, "run": {"language": code}}, prose)
    out = tmp_path / "out"
    assert manifest.counts["kept"] == 3, _records(out / REJECTED_FILE)
    kept = [Dialogue.model_validate(r) for r in _records(out / KEPT_FILE)]
    assert {d.seed.language for d in kept} == {code}
    # Every prose prompt (the seeker's message, the supporter's draft and revision) asks for the language.
    prompts = _prose_prompts(generator)
    assert prompts and all(f"({native}), never in English" in p for p in prompts)
    stats = stats_for_dir(out)
    assert stats["distributions"]["language"] == {code: 3}
    assert stats["lengths"]["words_per_seeker_turn"]["min"] >= 8
    assert stats["diversity"]["distinct_1"] > 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"language:\n- {code}\n" in card and "### Languages" in card


def test_an_english_reply_in_a_spanish_run_is_the_wrong_language(tmp_path, small_catalog_overrides):
    manifest, _ = _run(tmp_path, {**small_catalog_overrides, "run": {"language": "es"}}, varied_prose(), n=2)
    assert manifest.counts["kept"] == 0
    assert manifest.rejection_reasons.get("wrong_language") == 2


def test_english_prompts_and_fingerprints_are_what_they_were_before_runs_had_a_language(tmp_path,
                                                                                       small_catalog_overrides):
    _, generator = _run(tmp_path, small_catalog_overrides, varied_prose(), n=1)
    assert not any("never in English" in p for p in _prose_prompts(generator))
    # The fingerprint of these settings before languages, semantic dedup and min_script_share existed: a run made
    # then still resumes.
    dirs = {"personas_dir": "/p", "scenarios_dir": "/s"}
    assert load_config(None, dirs).fingerprint() == "d93afcf7fa352797"
    assert load_config(None, {**dirs, "run": {"language": "es"}}).fingerprint() != "d93afcf7fa352797"
    assert load_config(None, {**dirs, "dedup": {"semantic": True}}).fingerprint() != "d93afcf7fa352797"


def test_a_mixed_run_gives_the_seeds_their_languages_in_turn_and_keeps_english_ids(small_catalog_overrides):
    catalog = load_catalog(load_config(None, small_catalog_overrides).personas_dir,
                           load_config(None, small_catalog_overrides).scenarios_dir)
    mixed = plan_for(catalog, load_config(None, {**small_catalog_overrides, "n": 6,
                                                 "run": {"language": {"en": 1, "zh": 2}}}))
    plain = plan_for(catalog, load_config(None, {**small_catalog_overrides, "n": 6}))
    assert [s.language for s in mixed] == ["en", "zh", "zh"] * 2
    assert [s.situation.id for s in mixed] == [s.situation.id for s in plain]  # the language changes no draw
    assert mixed[0].id == plain[0].id and mixed[1].id != plain[1].id


def test_unspaced_scripts_are_compared_by_characters():
    assert words("我今天很难过，因为工作丢了。") == list("我今天很难过因为工作丢了")
    assert word_count("我今天很难过，因为工作丢了。") == 12 and word_count("I can't sleep ...") == 4
    assert words("¿Cómo estás, María?") == ["cómo", "estás", "maría"]


def test_dedup_finds_a_near_copy_in_chinese_and_keeps_a_different_text(tmp_path, small_catalog_overrides):
    _run(tmp_path, {**small_catalog_overrides, "run": {"language": "zh"}}, chinese_prose(), n=2)
    first, second = [Dialogue.model_validate(r) for r in _records(tmp_path / "out" / KEPT_FILE)]
    near = first.model_copy(update={"id": "copy", "turns": [
        t.model_copy(update={"text": t.text.replace("心里很难受", "心里很难过")}) for t in first.turns]})
    kept, dropped = dedup_dialogues([first, second, near], DedupConfig(threshold=0.7))
    assert second.id in {d.id for d in kept} and len(kept) == 2  # the same template, other words: no copy
    assert len(dropped) == 1 and {dropped[0].id, *(d.id for d in kept)} == {first.id, second.id, "copy"}


def test_an_unknown_language_flag_is_one_sentence_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "o"), "--language", "klingon"])
    assert result.exit_code == 2
    assert "--language 'klingon' is not a supported language" in result.output


def test_filter_reads_an_imported_corpus_in_the_language_it_is_given(tmp_path):
    from synth_empathy.run.corpus_filter import run_filter

    prose = chinese_prose(1)
    source = tmp_path / "chats.jsonl"
    source.write_text("".join(json.dumps({"id": f"c{i}", "messages": [
        {"role": "user", "content": prose([])}, {"role": "assistant", "content": prose([])}]}, ensure_ascii=False)
        + "\n" for i in range(3)), encoding="utf-8")
    for code, kept in (("zh", 3), ("en", 0)):
        manifest, _ = run_filter(load_config(None, {"run": {"language": code}}), source, tmp_path / code,
                                 judge_lm=scripted_lm(ScriptedEngine(structured=GOOD_JUDGE)))
        assert manifest.counts["kept"] == kept, manifest.rejection_reasons
    assert manifest.rejection_reasons == {"not_english": 3}
