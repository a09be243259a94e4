"""The review app in a real browser: Debian's headless Chromium, driven by Playwright, rates and edits a
dialogue with the keyboard, and the line lands in labels.jsonl."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from review_corpus import make_review_corpus

from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import KEPT_FILE
from synth_empathy.review.labels import LABELS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is missing (apt-get install -y chromium)")
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    """Readiness, not a timing claim: poll until the app answers (generous: the machine is shared)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"review exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def review_server(tmp_path):
    corpus = make_review_corpus(tmp_path / "run")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "synth_empathy", "review", str(corpus), "--port", str(port),
                             "--reviewer", "tester"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url + "api/items", proc)
        yield corpus, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_rate_and_edit_a_dialogue_with_the_keyboard(review_server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    corpus, url = review_server
    kept_before = (corpus / KEPT_FILE).read_bytes()
    items = json.load(urllib.request.urlopen(url + "api/items"))["items"]
    first = items[0]["id"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector(f"#seed .did:text('{first}')")
        assert page.locator("#progress").inner_text() == f"0 of {len(items)} labelled by you"
        kb = page.keyboard
        kb.press("7")                      # sensibility (the active row)
        kb.press("ArrowDown")
        kb.press("8")                      # rationality 8 ...
        kb.press("ArrowRight")             # ... stepped to 9
        for value in ("2", "1", "0"):      # ER, IP, EX
            kb.press("ArrowDown")
            kb.press(value)
        kb.press("ArrowDown")
        kb.press(" ")                      # sentiment attenuation on
        kb.press("a")                      # keep
        kb.press("e")                      # edit the first supporter turn
        area = page.locator(".turn textarea")
        assert area.evaluate("el => el === document.activeElement")
        kb.press("Control+a")
        kb.type("That sounds exhausting. What has been hardest?")
        kb.press("Escape")
        kb.press("m")
        kb.type("Warm but generic.")
        kb.press("Escape")
        assert page.locator(".row.active .name").inner_text() == "sentiment attenuation"
        assert page.locator("#keep").get_attribute("class") == "keep on"
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        kb.press("Enter")                  # save and next
        page.wait_for_selector("#status.ok")
        assert page.locator("#progress").inner_text() == f"1 of {len(items)} labelled by you"
        assert page.locator("#seed .did").inner_text() == items[1]["id"]
        assert page.locator(f"#queue li[data-id='{first}'] .done").inner_text() == "✓"
        kb.press("k")                      # back: the saved label is shown again
        page.wait_for_selector(f"#seed .did:text('{first}')")
        assert page.locator(".scale button.on").all_inner_texts()[:2] == ["7", "9"]
        browser.close()
    assert not errors
    lines = (corpus / LABELS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    label = json.loads(lines[0])
    dialogue = next(d for d in read_dialogues(corpus / KEPT_FILE) if d.id == first)
    assert label["dialogue_id"] == first and label["reviewer"] == "tester" and label["keep"] is True
    assert label["ratings"] == {"sensibility": 7, "rationality": 9, "er": 2, "ip": 1, "ex": 0, "failures": {
        "sentiment_attenuation": True, "granularity_mismatch": False, "conflict_avoidance": False,
        "linguistic_distancing": False}}
    assert label["edits"] == [{"index": 1, "original": dialogue.turns[1].text,
                               "text": "That sounds exhausting. What has been hardest?"}]
    assert label["note"] == "Warm but generic."
    assert (corpus / KEPT_FILE).read_bytes() == kept_before
    png = (tmp_path / "review.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
