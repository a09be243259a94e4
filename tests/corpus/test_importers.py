"""Dataset import: ED CSV, ESConv JSON, chat JSON/JSONL, situations JSONL, our own JSONL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import DATA as TEST_DATA
from conftest import REPO

from synth_empathy.corpus.importers import (
    DOMAIN_BY_PROBLEM_TYPE,
    ESCONV_EMOTIONS,
    ESCONV_STRATEGIES,
    PROBLEM_TYPE_ALIASES,
    detect_format,
    read_dataset,
    write_import,
)
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.schema import EMOTIONS, STRATEGIES, Dialogue

ROOT = REPO
DATA = TEST_DATA / "import"
ED_HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"


def _roles(d: Dialogue) -> list[str]:
    return [t.role for t in d.turns]


def _alternate(d: Dialogue) -> bool:
    return all(a.role != b.role for a, b in zip(d.turns, d.turns[1:], strict=False))


@pytest.mark.parametrize(("name", "fmt"), [
    ("ed_sample.csv", "ed_csv"),
    ("esconv_sample.json", "esconv"),
    ("sharegpt_sample.json", "chat"),
    ("messages_sample.jsonl", "chat"),
    ("situations_sample.jsonl", "situations"),
])
def test_detects_each_sample_format(name: str, fmt: str) -> None:
    assert detect_format(DATA / name) == fmt
    assert read_dataset(DATA / name).fmt == fmt


def test_detection_uses_content_when_the_extension_says_nothing(tmp_path: Path) -> None:
    copy = tmp_path / "scenarios.txt"
    copy.write_text((DATA / "situations_sample.jsonl").read_text())
    assert detect_format(copy) == "situations"
    esconv = tmp_path / "esconv.data"
    esconv.write_text((DATA / "esconv_sample.json").read_text())
    assert detect_format(esconv) == "esconv"


# ---------------------------------------------------------------- EmpatheticDialogues


def test_ed_conversations_become_alternating_dialogues_starting_with_the_seeker() -> None:
    result = read_dataset(DATA / "ed_sample.csv")
    assert [d.id for d in result.dialogues] == ["ed-hit:12_conv:24", "ed-hit:37_conv:75", "ed-hit:58_conv:117"]
    for d in result.dialogues:
        assert d.turns[0].role == "seeker"
        assert _alternate(d)
        assert all(t.strategy == "other" for t in d.turns if t.role == "supporter")
        assert all(t.strategy is None for t in d.turns if t.role == "seeker")
        assert d.seed.id == d.id and d.seed.source == "ed_csv"
    assert _roles(result.dialogues[2]) == ["seeker", "supporter", "seeker"]


def test_ed_comma_tokens_are_decoded_in_prompt_and_utterance() -> None:
    first = read_dataset(DATA / "ed_sample.csv").dialogues[0]
    assert first.turns[1].text.startswith("Oh wow, that must")
    assert first.seed.situation.text.startswith("I found a box of letters from my grandmother in the attic, and")
    assert "_comma_" not in json.dumps([d.model_dump() for d in read_dataset(DATA / "ed_sample.csv").dialogues])


def test_ed_row_with_a_stray_comma_is_repaired_and_counted() -> None:
    result = read_dataset(DATA / "ed_sample.csv")
    burglary = result.dialogues[1]
    assert burglary.turns[2].text == "Yes, I called the police right away and they came within ten minutes."
    assert burglary.turns[3].role == "supporter"
    assert result.repairs == 1
    assert result.repair_kinds == {"ed_extra_commas_rejoined": 1}


def test_ed_unknown_emotion_label_is_a_bad_row_with_its_conversation_and_lines() -> None:
    result = read_dataset(DATA / "ed_sample.csv")
    assert len(result.bad_rows) == 1
    bad = result.bad_rows[0]
    assert bad.location == "conv_id hit:81_conv:163 (lines 13-14)"
    assert "unknown emotion label 'nervous'" in bad.reason
    assert "ed-hit:81_conv:163" not in {d.id for d in result.dialogues}


def test_ed_prompts_become_scenario_nodes_with_the_emotion_and_an_unspecified_problem_type() -> None:
    result = read_dataset(DATA / "ed_sample.csv")
    assert [(s.emotions, s.problem_type, s.domain) for s in result.situations] == [
        (["nostalgic"], "unspecified", "personal_growth"),
        (["terrified"], "unspecified", "personal_growth"),
        (["proud"], "unspecified", "personal_growth"),
    ]
    assert all(s.id.startswith("imp-") for s in result.situations)
    assert result.dialogues[0].seed.situation == result.situations[0]


def test_ed_rows_are_ordered_by_utterance_idx_and_an_unreadable_row_skips_its_conversation(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(ED_HEADER + "\n".join([
        "hit:1_conv:2,2,sad,My cat is sick.,9,Oh no_comma_ what happened?,5|5|5_5|5|5,",
        "hit:1_conv:2,1,sad,My cat is sick.,8,My cat has been sick all week.,5|5|5_5|5|5,",
        "hit:1_conv:2,3,sad,My cat is sick.,8,The vet does not know yet.,5|5|5_5|5|5,",
        "hit:2_conv:4,1,angry,My neighbour blocked my drive.,3,He parked across my drive again.,5|5|5_5|5|5,",
        "hit:2_conv:4,2,angry,garbled",
        "hit:3_conv:6,1,joyful,Got the flat.,4,We got the flat!,5|5|5_5|5|5,",
        "hit:3_conv:6,2,content,Got the flat.,5,Congratulations!,5|5|5_5|5|5,",
    ]) + "\n")
    result = read_dataset(path)
    assert [d.id for d in result.dialogues] == ["ed-hit:1_conv:2"]
    assert [t.text for t in result.dialogues[0].turns] == [
        "My cat has been sick all week.", "Oh no, what happened?", "The vet does not know yet."]
    assert [(b.location, b.reason.split(" (")[0].split(":")[0]) for b in result.bad_rows] == [
        ("line 6", "expected 8 comma-separated fields"),
        ("conv_id hit:2_conv:4 (lines 5-5)", "conversation skipped"),
        ("conv_id hit:3_conv:6 (lines 7-8)", "rows disagree on the emotion label"),
    ]


def test_ed_file_is_read_like_the_ed_loader_not_as_quoted_csv(tmp_path: Path) -> None:
    path = tmp_path / "valid.csv"
    path.write_text(ED_HEADER
                    + 'hit:5_conv:10,1,excited,I got "the" job.,1,"I got the job,2,5|5|5_5|5|5,\n'
                    + 'hit:5_conv:10,2,excited,I got "the" job.,2,That is great news!,5|5|5_5|5|5,\n')
    result = read_dataset(path)
    assert [t.text for t in result.dialogues[0].turns] == ['"I got the job,2', "That is great news!"]
    assert result.dialogues[0].seed.situation.text == 'I got "the" job.'
    assert result.repairs == 1


# ---------------------------------------------------------------- ESConv


def test_esconv_merges_consecutive_utterances_and_keeps_the_first_strategy() -> None:
    d = read_dataset(DATA / "esconv_sample.json").dialogues[0]
    assert d.id == "esconv-0"
    assert _alternate(d)
    assert d.turns[2].text == ("Not great honestly. I lost my job two weeks ago. "
                               "I keep applying everywhere and nobody calls back.")
    assert d.turns[3].strategy == "restatement"
    assert d.turns[3].text.endswith("hearing nothing back. That sounds really stressful and discouraging.")
    assert [t.strategy for t in d.turns if t.role == "supporter"] == [
        "question", "restatement", "suggestion", "affirmation"]


def test_esconv_maps_strategies_emotions_problem_types_and_intensity() -> None:
    result = read_dataset(DATA / "esconv_sample.json")
    job, thesis = result.dialogues
    assert (job.seed.emotion, job.seed.problem_type, job.seed.intensity) == ("anxious", "job_crisis", 8)
    assert (thesis.seed.emotion, thesis.seed.problem_type, thesis.seed.intensity) == (
        "apprehensive", "procrastination", 6)
    assert thesis.id == "esconv-1" and thesis.turns[0].role == "supporter"
    assert [t.strategy for t in thesis.turns if t.role == "supporter"] == ["question", "self_disclosure", "information"]
    assert thesis.turns[4].text.endswith("make starting easier. Good luck!")
    assert [(s.problem_type, s.domain) for s in result.situations] == [
        ("job_crisis", "work"), ("procrastination", "personal_growth")]
    assert result.problem_type_labels["procrastination"] == "Procrastination"
    assert job.provenance.generator_model == "dataset:esconv"
    assert job.provenance.config_fingerprint == "import"
    assert job.seed.persona.name == "unknown" and job.seed.persona.bio.startswith("Imported from ESConv")


def test_esconv_unknown_emotion_and_unknown_strategy_are_reported(tmp_path: Path) -> None:
    records = json.loads((DATA / "esconv_sample.json").read_text())
    records[0]["emotion_type"] = "boredom"
    records[1]["dialog"][2]["annotation"]["strategy"] = "Humour"
    path = tmp_path / "ESConv.json"
    path.write_text(json.dumps(records))
    result = read_dataset(path)
    assert [(b.location, b.reason) for b in result.bad_rows] == [("record 0", "unknown emotion label 'boredom'")]
    assert [d.id for d in result.dialogues] == ["esconv-1"]
    assert result.dialogues[0].turns[2].strategy == "other"
    assert result.repair_kinds == {"unknown_strategy_as_other": 1}


def test_mapping_tables_point_at_ids_that_exist() -> None:
    doc = yaml.safe_load((ROOT / "scenarios" / "problem_types.yaml").read_text())
    shipped = {p["id"] for p in doc["problem_types"]}
    assert set(PROBLEM_TYPE_ALIASES.values()) <= shipped
    assert shipped <= set(DOMAIN_BY_PROBLEM_TYPE)
    assert set(ESCONV_EMOTIONS.values()) <= set(EMOTIONS)
    assert set(ESCONV_STRATEGIES.values()) == set(STRATEGIES)


# ---------------------------------------------------------------- chat


def test_sharegpt_records_skip_system_merge_turns_and_use_record_labels() -> None:
    result = read_dataset(DATA / "sharegpt_sample.json")
    lonely, dog = result.dialogues
    assert lonely.id == "chat-sg-001"
    assert _roles(lonely) == ["seeker", "supporter", "seeker", "supporter"]
    assert lonely.turns[1].text == ("Six months is a long time to feel on your own. "
                                    "What has a typical weekend looked like for you?")
    assert (lonely.seed.emotion, lonely.seed.problem_type) == ("lonely", "loneliness")
    assert [s.text for s in result.situations] == [lonely.seed.situation.text]
    assert result.stats["system_messages_skipped"] == 1


def test_chat_record_without_labels_is_imported_but_adds_no_scenario_node() -> None:
    dog = read_dataset(DATA / "sharegpt_sample.json").dialogues[1]
    assert dog.id == "chat-1"
    assert (dog.seed.emotion, dog.seed.problem_type) == ("unspecified", "unspecified")
    assert dog.seed.situation.text == dog.turns[0].text


def test_chat_record_without_a_supporter_is_a_bad_row() -> None:
    result = read_dataset(DATA / "sharegpt_sample.json")
    assert [(b.location, b.reason) for b in result.bad_rows] == [
        ("record 2", "needs at least one seeker turn and one supporter turn")]


def test_messages_jsonl_ids_labels_and_broken_line() -> None:
    result = read_dataset(DATA / "messages_sample.jsonl")
    assert [d.id for d in result.dialogues] == ["chat-0", "chat-42"]
    driving, birthday = result.dialogues
    assert driving.seed.emotion == "sad"  # ESConv-style "sadness"
    assert driving.seed.problem_type == "personal_growth"
    assert birthday.turns[0].text == "My best friend forgot my birthday."  # content parts
    assert birthday.seed.emotion == "disappointed"
    assert len(result.situations) == 1  # the birthday record has no situation text
    assert [(b.location, b.reason.split(" (")[0]) for b in result.bad_rows] == [("line 4", "not valid JSON")]


def test_chat_record_with_unknown_emotion_or_role_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path.write_text("\n".join(json.dumps(r) for r in [
        {"messages": turns, "emotion": "meh"},
        {"messages": [*turns, {"role": "tool", "content": "{}"}]},
        {"messages": turns},
    ]) + "\n")
    result = read_dataset(path)
    assert [(b.location, b.reason) for b in result.bad_rows] == [
        ("line 1", "unknown emotion label 'meh'"), ("line 2", "message 2 has unknown role 'tool'")]
    assert [d.id for d in result.dialogues] == ["chat-2"]


# ---------------------------------------------------------------- situations, synth


def test_situations_jsonl_gives_scenario_nodes_only() -> None:
    result = read_dataset(DATA / "situations_sample.jsonl")
    assert result.dialogues == []
    assert [(s.emotions, s.problem_type, s.domain) for s in result.situations] == [
        (["anxious"], "relocation", "home"),
        (["anxious"], "sleep_problems", "health"),
        (["surprised"], "unspecified", "personal_growth"),
    ]
    assert [(b.location, b.reason) for b in result.bad_rows] == [("line 4", "unknown emotion label 'hangry'")]
    assert result.stats["duplicate_situations"] == 1


def test_our_own_jsonl_passes_through_unchanged(tmp_path: Path) -> None:
    original = read_dataset(DATA / "esconv_sample.json").dialogues
    path = tmp_path / "dialogues.jsonl"
    path.write_text("".join(d.model_dump_json() + "\n" for d in original) + '{"id": "x", "turns": [], "seed": {}}\n')
    assert detect_format(path) == "synth"
    result = read_dataset(path)
    assert result.dialogues == original
    assert result.situations == []
    assert len(result.bad_rows) == 1 and result.bad_rows[0].location == "line 3"
    assert result.bad_rows[0].reason.startswith("not a valid dialogue record")


def test_ids_are_stable_across_reads() -> None:
    for name in ("ed_sample.csv", "esconv_sample.json", "sharegpt_sample.json", "messages_sample.jsonl"):
        a, b = read_dataset(DATA / name), read_dataset(DATA / name)
        assert [d.id for d in a.dialogues] == [d.id for d in b.dialogues]
        assert [s.id for s in a.situations] == [s.id for s in b.situations]
        assert [d.seed.situation.id for d in a.dialogues] == [d.seed.situation.id for d in b.dialogues]


# ---------------------------------------------------------------- refusals


def test_malformed_file_is_refused_with_one_sentence_naming_it() -> None:
    with pytest.raises(UserError) as exc:
        read_dataset(DATA / "malformed.json")
    message = str(exc.value)
    assert "malformed.json" in message and "not valid JSON" in message
    assert "expected an EmpatheticDialogues CSV" in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "content", "words"), [
    ("other.json", '[{"question": "q", "answer": "a"}]', "matches no known format"),
    ("notes.txt", "just some notes\n", "not a dataset this importer knows"),
    ("empty.jsonl", "\n\n", "the file is empty"),
    ("wrong_header.csv", "id,text\n1,hello\n", "not the EmpatheticDialogues header"),
])
def test_unknown_files_are_refused(tmp_path: Path, name: str, content: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=words):
        detect_format(path)


def test_missing_file_and_unknown_format_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_dataset(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="unknown import format 'parquet'"):
        read_dataset(DATA / "situations_sample.jsonl", fmt="parquet")


def test_format_argument_overrides_detection() -> None:
    result = read_dataset(DATA / "messages_sample.jsonl", fmt="situations")
    assert result.fmt == "situations" and result.dialogues == []
    assert [s.text for s in result.situations] == [
        "Failed the driving test for the third time while friends passed first time."]
    assert [(b.location, b.reason.split(" (")[0]) for b in result.bad_rows] == [
        ("line 2", "no 'situation' text"), ("line 4", "not valid JSON")]


# ---------------------------------------------------------------- writing


def _all_samples() -> list:
    return [read_dataset(DATA / name) for name in (
        "ed_sample.csv", "esconv_sample.json", "sharegpt_sample.json", "messages_sample.jsonl",
        "situations_sample.jsonl")]


def test_written_scenarios_load_through_the_catalog_loader(tmp_path: Path) -> None:
    write_import(_all_samples(), tmp_path / "out")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for src in (ROOT / "scenarios" / "emotions.yaml", ROOT / "scenarios" / "problem_types.yaml",
                tmp_path / "out" / "scenarios" / "imported.yaml"):
        shutil.copy(src, scenarios)
    catalog = load_catalog(ROOT / "personas", scenarios)
    imported = [s for s in catalog.situations if s.id.startswith("imp-")]
    assert len(imported) == len(catalog.situations) == 10
    assert {"unspecified", "procrastination", "sleep_problems"} <= {p.id for p in catalog.problem_types}


def test_only_problem_types_missing_from_the_catalog_are_written(tmp_path: Path) -> None:
    report = write_import(_all_samples(), tmp_path)
    assert report["new_problem_types"] == ["personal_growth", "procrastination", "sleep_problems", "unspecified"]
    doc = yaml.safe_load((tmp_path / "scenarios" / "imported.yaml").read_text())
    assert [p["id"] for p in doc["problem_types"]] == report["new_problem_types"]
    labels = {p["id"]: p["label"] for p in doc["problem_types"]}
    assert labels["sleep_problems"] == "Sleep Problems"


def test_write_import_writes_dialogues_and_a_report_with_bad_rows(tmp_path: Path) -> None:
    results = _all_samples()
    report = write_import(results, tmp_path)
    lines = (tmp_path / "reference_dialogues.jsonl").read_text().splitlines()
    dialogues = [Dialogue.model_validate_json(line) for line in lines]
    assert len(dialogues) == report["counts"]["dialogues"] == 9
    assert json.loads((tmp_path / "import_report.json").read_text()) == report
    assert report["counts_by_format"]["ed_csv"] == {
        "files": 1, "dialogues": 3, "situations": 3, "bad_rows": 1, "repairs": 1}
    assert report["counts_by_format"]["chat"]["files"] == 2
    assert report["counts"]["repairs"] == 1
    locations = {(Path(b["source"]).name, b["location"]) for b in report["bad_rows"]}
    assert locations == {
        ("ed_sample.csv", "conv_id hit:81_conv:163 (lines 13-14)"),
        ("sharegpt_sample.json", "record 2"),
        ("messages_sample.jsonl", "line 4"),
        ("situations_sample.jsonl", "line 4"),
    }


def test_writing_one_result_against_a_catalog_that_knows_its_problem_types(tmp_path: Path) -> None:
    scenarios = tmp_path / "catalog"
    scenarios.mkdir()
    shutil.copy(ROOT / "scenarios" / "problem_types.yaml", scenarios)
    (scenarios / "extra.yaml").write_text(yaml.safe_dump({"problem_types": [
        {"id": "procrastination", "label": "Procrastination", "description": "Putting things off."}]}))
    report = write_import(read_dataset(DATA / "esconv_sample.json"), tmp_path / "out", scenarios_dir=scenarios)
    assert report["new_problem_types"] == []
    doc = yaml.safe_load((tmp_path / "out" / "scenarios" / "imported.yaml").read_text())
    assert "problem_types" not in doc and len(doc["situations"]) == 2


def test_same_dialogue_id_from_two_files_is_reported_not_dropped_silently(tmp_path: Path) -> None:
    a = read_dataset(DATA / "esconv_sample.json")
    b = read_dataset(DATA / "esconv_sample.json")
    report = write_import([a, b], tmp_path)
    assert report["counts"]["dialogues"] == 2
    assert [b["location"] for b in report["bad_rows"]] == ["dialogue esconv-0", "dialogue esconv-1"]
