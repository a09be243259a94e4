"""The review app's JSON routes (Starlette's TestClient) and the review command's bad input."""

from __future__ import annotations

import pytest
from review_corpus import make_review_corpus
from starlette.testclient import TestClient
from typer.testing import CliRunner

from synth_empathy.cli import app as cli
from synth_empathy.review.app import create_app
from synth_empathy.review.labels import LABELS, read_labels


@pytest.fixture
def client(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    with TestClient(create_app(corpus, "ana")) as c:
        c.corpus = corpus
        yield c


def test_items_come_in_review_order_with_facets_and_progress(client):
    data = client.get("/api/items").json()
    assert data["reviewer"] == "ana" and data["progress"] == {"total": len(data["items"]), "mine": 0, "labels": 0}
    whys = [it["why"] for it in data["items"]]
    assert whys[0] != "random" and "random" in whys and whys.index("random") == sum(w != "random" for w in whys)
    assert set(data["facets"]["stage"]) == {"kept", "rules", "dedup", "judge"}
    assert client.get("/").text.startswith("<!DOCTYPE html>")
    assert "function show" in client.get("/static/review.js").text


def test_a_label_is_stored_with_the_original_text_and_shown_back(client):
    first = client.get("/api/items").json()["items"][0]["id"]
    detail = client.get(f"/api/items/{first}").json()
    original = detail["dialogue"]["turns"][1]["text"]
    same = detail["dialogue"]["turns"][3]["text"]
    body = {"dialogue_id": first, "keep": False, "note": " dull ", "ratings": {"sensibility": 4},
            "edits": [{"index": 1, "text": "Better reply."}, {"index": 3, "text": same}]}
    saved = client.post("/api/labels", json=body).json()
    assert saved["progress"]["mine"] == 1 and saved["item"]["mine"]
    [stored] = read_labels(client.corpus / LABELS)
    assert stored.edits[0].model_dump() == {"index": 1, "original": original, "text": "Better reply."}
    assert len(stored.edits) == 1 and stored.note == "dull" and stored.reviewer == "ana"  # unchanged text: no edit
    assert client.get(f"/api/items/{first}").json()["my_label"]["ratings"]["sensibility"] == 4


@pytest.mark.parametrize(("body", "message"), [
    ({"dialogue_id": "nope", "keep": True}, "no dialogue"),
    ({"keep": True, "edits": [{"index": 0, "text": "x"}]}, "not a supporter turn"),
    ({"ratings": {"sensibility": 4}}, "keep"),
    ({"keep": True, "ratings": {"sensibility": 11}}, "ratings.sensibility"),
])
def test_bad_labels_are_refused_with_one_sentence_and_nothing_written(client, body, message):
    first = client.get("/api/items").json()["items"][0]["id"]
    response = client.post("/api/labels", json={"dialogue_id": first, **body})
    assert response.status_code == 400 and message in response.json()["error"]
    assert client.post("/api/labels", content=b"{not json").status_code == 400
    assert not (client.corpus / LABELS).exists() or not read_labels(client.corpus / LABELS)
    assert client.get("/api/items/nope").status_code == 404


def test_review_command_bad_input_exits_2(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["review", str(tmp_path)])
    assert result.exit_code == 2 and "holds no dialogues.jsonl" in result.output
    result = runner.invoke(cli, ["review", str(tmp_path), "--port", "70000"])
    assert result.exit_code == 2 and "--port" in result.output
