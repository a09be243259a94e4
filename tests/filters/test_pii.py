"""The personal-data pass: what it finds offline, and report / mask / drop on import and export."""

import json

import pytest
from builders import GOOD_TEXTS, make_dialogue
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.filters.pii import find_pii, mask_pii, pii_pass
from synth_empathy.schema import Critique, Draft

LEAKY = ("I feel so alone since the move. Write to ana.perez@example.org or call +34 612 345 678 tonight. "
         "I'm @ana_lonely online, at 221B Baker Street, card 4111 1111 1111 1111, see https://example.com/me.")


def _found(text):
    return [(s.entity, text[s.start:s.end]) for s in find_pii(text)]


def test_the_pattern_recognizers_find_each_kind_of_personal_data():
    assert _found(LEAKY) == [
        ("EMAIL_ADDRESS", "ana.perez@example.org"), ("PHONE_NUMBER", "+34 612 345 678"), ("HANDLE", "@ana_lonely"),
        ("STREET_ADDRESS", "221B Baker Street"), ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("URL", "https://example.com/me")]
    assert _found("Vivo en Calle de Alcalá 45 y mi móvil es 612 345 678.") == [
        ("STREET_ADDRESS", "Calle de Alcalá 45"), ("PHONE_NUMBER", "612 345 678")]
    assert _found("我的邮箱是 wang@example.cn，电话 +86 138 0013 8000。") == [
        ("EMAIL_ADDRESS", "wang@example.cn"), ("PHONE_NUMBER", "+86 138 0013 8000")]


def test_ordinary_talk_with_numbers_is_not_personal_data():
    for text in ("I worked 12 hours, 3 days in a row, since 2019; I'm 34 and it was 10.30 p.m.",
                 "It cost 1,250.00 dollars on 12/05/2023, about 3.5 percent more, e.g. rent.",
                 "I walked 2 More Days down the road with Mr. Smith."):
        assert find_pii(text) == [], text


def test_mask_replaces_each_span_with_its_type():
    text = "Mail ana@example.org or call +1 415 555 2671."
    assert mask_pii(text, find_pii(text)) == "Mail [EMAIL] or call [PHONE]."


def test_report_keeps_everything_mask_rewrites_drop_removes():
    clean = make_dialogue(GOOD_TEXTS, ident="clean")
    leaky = make_dialogue([LEAKY, *GOOD_TEXTS[1:]], ident="leaky")
    kept, report = pii_pass([clean, leaky], "report")
    assert [d.id for d in kept] == ["clean", "leaky"] and kept[1].turns[0].text == LEAKY
    assert report.records == 2 and report.records_with_pii == 1 and report.counts["EMAIL_ADDRESS"] == 1
    masked, _ = pii_pass([clean, leaky], "mask")
    assert masked[1].turns[0].text.startswith("I feel so alone since the move. Write to [EMAIL] or call [PHONE]")
    assert find_pii(" ".join(t.text for t in masked[1].turns)) == []
    dropped, report = pii_pass([clean, leaky], "drop")
    assert [d.id for d in dropped] == ["clean"] and report.dropped == ["leaky"]


def _chat_file(tmp_path):
    path = tmp_path / "chats.jsonl"
    records = [{"id": "c1", "messages": [{"role": "user", "content": LEAKY},
                                         {"role": "assistant", "content": "Moving away from everyone is hard."}]},
               {"id": "c2", "messages": [{"role": "user", "content": "My boss yelled at me in front of everyone."},
                                         {"role": "assistant", "content": "That sounds humiliating."}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize(("mode", "kept", "leak_left"), [("report", 2, True), ("mask", 2, False), ("drop", 1, False)])
def test_graph_import_runs_the_pass_and_reports_counts_by_type(tmp_path, mode, kept, leak_left):
    out = tmp_path / "imported"
    result = CliRunner().invoke(app, ["graph", "import", str(_chat_file(tmp_path)), "--out", str(out),
                                      "--pii", mode, "--license", "CC-BY-4.0"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "import_report.json").read_text())
    assert report["pii"]["dialogues"]["counts"] == {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 1, "HANDLE": 1,
                                                    "PHONE_NUMBER": 1, "STREET_ADDRESS": 1, "URL": 1}
    assert "names" in report["pii"]["not_checked"][0]
    text = (out / "reference_dialogues.jsonl").read_text()
    assert len(text.splitlines()) == kept and ("ana.perez@example.org" in text) == leak_left
    assert report["sources"][0]["license"] == "CC-BY-4.0"


def test_a_bad_pii_mode_is_one_sentence_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["graph", "import", str(_chat_file(tmp_path)), "--out", str(tmp_path / "o"),
                                      "--pii", "scrub"])
    assert result.exit_code == 2 and "--pii must be one of off, report, mask, drop, not 'scrub'" in result.output


def test_export_masks_before_writing_and_says_what_it_found(tmp_path, small_catalog_overrides):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    leaky = make_dialogue([LEAKY, *GOOD_TEXTS[1:]], ident="leaky")
    (corpus / "dialogues.jsonl").write_text(leaky.model_dump_json() + "\n", encoding="utf-8")
    out = tmp_path / "train.jsonl"
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "openai", "--out", str(out),
                                      "--pii", "mask"])
    assert result.exit_code == 0, result.output
    assert "personal data (mask): 1 of 1 records" in result.output
    assert "ana.perez@example.org" not in out.read_text() and "[EMAIL]" in out.read_text()


def test_a_dpo_export_masks_the_drafts_it_pairs_too(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    leaky = make_dialogue([GOOD_TEXTS[0], "Write to me at ana.perez@example.org any time.", *GOOD_TEXTS[2:]],
                          ident="leaky")
    critique = Critique(er=0, ip=1, ex=0, failures=["linguistic_distancing"], feedback="Speak to them.")
    revised = leaky.turns[1].model_copy(update={"revised": True, "drafts": [
        Draft(text="Email me, ana.perez@example.org.", critique=critique)]})
    leaky = leaky.model_copy(update={"turns": [leaky.turns[0], revised, *leaky.turns[2:]]})
    (corpus / "dialogues.jsonl").write_text(leaky.model_dump_json() + "\n", encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(app, ["export", str(corpus), "--format", "dpo", "--out", str(out), "--pii", "mask"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "ana.perez@example.org" not in text and text.count("[EMAIL]") == 2  # the draft and the revision
