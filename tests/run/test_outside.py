"""Outside datasets come back as they were given: dedup, judge and filter write the kept records verbatim and
what they found beside them, keyed by the input's own ids."""

import json
from pathlib import Path

import pytest
from builders import GOOD_TEXTS
from conftest import DATA
from fake_openai import FakeOpenAIServer, default_responder
from texts import spaced, substituted, words
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.config import DedupConfig
from synth_empathy.corpus.importers import read_dataset
from synth_empathy.corpus.records import import_records, stream_utterances
from synth_empathy.filters.dedup import dedup_dialogues, find_normalized_duplicates, scoped_text
from synth_empathy.text import normalized_bytes

runner = CliRunner()


def _chat(rid, seeker: str, supporter: str, **extra) -> dict:
    return {"id": rid, "messages": [{"role": "user", "content": seeker}, {"role": "assistant", "content": supporter}],
            **extra}


def _outside_jsonl(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A chat JSONL with the user's own fields, odd spacing, CRLF endings, a blank line and a bad row."""
    base = " ".join(words(40))
    near = " ".join(substituted(words(40), spaced(4)))
    lines = [
        json.dumps(_chat("d1", base, "That sounds hard.", lang="en", meta={"src": "forum"})).encode() + b"\r\n",
        json.dumps(_chat("d2", near, "That sounds hard.", lang="en"), indent=None, separators=(",", ":")).encode()
        + b"\n",
        b"\n",
        json.dumps(_chat(7, " ".join(words(41)), "I hear you.", rating=4), ensure_ascii=False).encode() + b"\n",
        json.dumps(_chat("d3", base.upper() + "!!", "That sounds   hard!")).encode() + b"\n",
        b'{"id": "bad", "messages": "not a list"}\n',
        json.dumps(_chat("d4", " ".join(words(42)), "Caf\u00e9 talk helps.")).encode(),  # no final newline
    ]
    path = tmp_path / "outside.jsonl"
    path.write_bytes(b"".join(lines))
    return path, lines


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_dedup_of_a_chat_jsonl_writes_the_kept_lines_byte_for_byte(tmp_path):
    source, lines = _outside_jsonl(tmp_path)
    out = tmp_path / "deduped.jsonl"
    result = runner.invoke(app, ["dedup", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == lines[0] + lines[3] + lines[6]
    dups = _jsonl(tmp_path / "deduped.duplicates.jsonl")
    assert [(d["id"], d["record"], d["reasons"], d["duplicate_of"]) for d in dups] == [
        ("d2", 1, ["near_duplicate"], "d1"), ("d3", 3, ["exact_duplicate"], "d1")]
    assert 0.8 <= dups[0]["jaccard"] < 1 and dups[1]["jaccard"] == 1.0
    assert _jsonl(tmp_path / "deduped.bad_rows.jsonl") == [{"location": "line 6",
                                                           "reason": "'messages' is not a list"}]
    assert source.read_bytes() == b"".join(lines)  # never touched


def test_dedup_streaming_reader_agrees_with_the_importer(tmp_path):
    source, _ = _outside_jsonl(tmp_path)
    records, utterances = stream_utterances(source)
    normalized = [normalized_bytes(scoped_text(((r, t) for r, t, _ in u), "dialogue")) for u in utterances]
    imported, dialogues = import_records(source, fmt="chat")  # forced through the importer
    assert records.ids == imported.ids == [d.id for d in dialogues]
    assert records.keys == imported.keys == ["d1", "d2", 7, "d3", "d4"]
    assert [(b.location, b.reason) for b in records.bad_rows] == [(b.location, b.reason) for b in imported.bad_rows]
    streamed = find_normalized_duplicates(records.ids, normalized, DedupConfig())
    _, rejections = dedup_dialogues(dialogues, DedupConfig())
    assert set(streamed) == {r.id for r in rejections} == {"chat-d2", "chat-d3"}


def test_plain_turns_jsonl_is_a_chat_dataset(tmp_path):
    path = tmp_path / "turns.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "turns": [{"role": "seeker", "text": GOOD_TEXTS[0]},
                                                                {"role": "supporter", "text": GOOD_TEXTS[1]}]})
                            + "\n" for i in range(2)))
    result = read_dataset(path)
    assert result.fmt == "chat" and [d.id for d in result.dialogues] == ["chat-t0", "chat-t1"]
    assert [t.role for t in result.dialogues[0].turns] == ["seeker", "supporter"]
    out = tmp_path / "kept.jsonl"
    assert runner.invoke(app, ["dedup", str(path), "--out", str(out)]).exit_code == 0
    assert out.read_text() == path.read_text().splitlines(keepends=True)[0]


def test_dedup_of_an_ed_csv_writes_the_header_and_the_kept_conversations_rows(tmp_path):
    ed = DATA / "import" / "ed_sample.csv"
    doubled = tmp_path / "ed.csv"
    raw = ed.read_bytes().splitlines(keepends=True)
    first_conv = [line for line in raw if line.startswith(b"hit:12_conv:24,")]
    copy = [line.replace(b"hit:12_conv:24,", b"hit:99_conv:1,") for line in first_conv]
    doubled.write_bytes(b"".join(raw + copy))
    out = tmp_path / "kept.csv"
    result = runner.invoke(app, ["dedup", str(doubled), "--out", str(out)])
    assert result.exit_code == 0, result.output
    kept = out.read_bytes().splitlines(keepends=True)
    assert kept[0] == raw[0] and not any(line in kept for line in copy)
    assert all(line in raw for line in kept)  # every line as it was
    assert first_conv[0] in kept
    assert _jsonl(tmp_path / "kept.duplicates.jsonl")[0]["id"] == "hit:99_conv:1"
    wrong = runner.invoke(app, ["dedup", str(doubled), "--out", str(tmp_path / "other.jsonl")])
    assert wrong.exit_code == 2 and "other.csv" in wrong.output and "Traceback" not in wrong.output


def test_dedup_of_a_json_list_writes_the_same_items(tmp_path):
    items = json.loads((DATA / "import" / "sharegpt_sample.json").read_text())
    source = tmp_path / "list.json"
    source.write_text(json.dumps(items + [items[0]], indent=4))
    out = tmp_path / "kept.json"
    result = runner.invoke(app, ["dedup", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    readable = [item for item in items if item.get("id") != "sg-003"]  # sg-003 has no supporter turn: a bad row
    assert json.loads(out.read_text()) == readable


def _levels(sensibility: int):
    def responder(body: dict) -> str:
        data = json.loads(default_responder(body))
        data.update(sensibility=sensibility, rationality=7)
        return json.dumps(data)
    return responder


@pytest.fixture
def judge_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def test_judge_of_an_outside_file_keeps_records_verbatim_and_scores_them_by_their_ids(tmp_path, judge_env):
    source, lines = _outside_jsonl(tmp_path)
    out = tmp_path / "judged.jsonl"
    with FakeOpenAIServer(responder=_levels(8)) as server:
        result = runner.invoke(app, ["judge", str(source), "--out", str(out), "--backend", "openai", "--model", "j",
                                     "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"".join(lines[i] for i in (0, 1, 3, 4, 6))
    scores = _jsonl(tmp_path / "judged.scores.jsonl")
    assert [s["id"] for s in scores] == ["d1", "d2", 7, "d3", "d4"]
    assert all(s["kept"] and s["scores"]["sensibility"] == 8 for s in scores)


def test_judge_below_the_thresholds_keeps_nothing_and_says_why(tmp_path, judge_env):
    source, _ = _outside_jsonl(tmp_path)
    out = tmp_path / "judged.jsonl"
    with FakeOpenAIServer(responder=_levels(1)) as server:
        result = runner.invoke(app, ["judge", str(source), "--out", str(out), "--backend", "openai", "--model", "j",
                                     "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b""
    assert {tuple(s["reasons"]) for s in _jsonl(tmp_path / "judged.scores.jsonl")} == {("low_sensibility",)}


def _messages(texts: list[str]) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def test_filter_of_an_outside_file_writes_its_records_beside_our_layout(tmp_path, judge_env):
    other = [t.replace("warehouse", "bakery").replace("sister", "brother") + " Really." for t in GOOD_TEXTS[:2]] + [
        "It is the late rent on top of everything else this month, honestly.",
        "Late rent on top of losing the job would flatten anyone."]
    lines = [json.dumps({"id": "a", "messages": _messages(GOOD_TEXTS), "split": "train"}) + "\n",
             json.dumps({"id": "b", "messages": _messages([t.upper() for t in GOOD_TEXTS])}) + "\n",
             json.dumps({"id": "c", "messages": _messages(other)}, indent=None, separators=(",", ":")) + "\n"]
    source = tmp_path / "outside.jsonl"
    source.write_text("".join(lines))
    out = tmp_path / "filtered"
    with FakeOpenAIServer(responder=_levels(8)) as server:
        result = runner.invoke(app, ["filter", str(source), "--out", str(out), "--backend", "openai", "--model", "j",
                                     "--api-base", server.base_url])
    assert result.exit_code == 0, result.output
    assert (out / "source_kept.jsonl").read_text() == lines[0] + lines[2]
    assert (out / "source_rejected.jsonl").read_text() == lines[1]
    outcomes = _jsonl(out / "source_outcomes.jsonl")
    assert [(o["id"], o["kept"]) for o in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert outcomes[1]["stage"] == "dedup" and outcomes[1]["detail"].startswith("duplicates a ")
    assert outcomes[0]["scores"]["sensibility"] == 8
    assert (out / "dialogues.jsonl").is_file() and (out / "README.md").is_file()  # our layout too
