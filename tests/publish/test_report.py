"""The HTML report: self-contained, and rendered for real in headless Chromium (screenshot and DOM)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from corpora import make_corpus

from synth_empathy.corpus.read import read_corpus
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE
from synth_empathy.errors import UserError
from synth_empathy.publish.report import render_report, write_report
from synth_empathy.publish.stats import stats_for_corpus

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium) to render the report")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    corpus = make_corpus(root / "run", n=60, rejected=16)
    return write_report(corpus, root / "out" / "report.html", sample_size=12)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with everything that could reach a network switched off."""
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, the decompressed filtered scanlines) of a PNG, without an imaging library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page and page.count("<svg ") >= 8
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page


def test_report_holds_every_plot_and_the_sample(report):
    page = report.read_text(encoding="utf-8")
    for ident in ("score-sensibility", "score-rationality", "coverage-heatmap", "intensity-trajectories",
                  "rejections-by-stage", "rejections-by-reason", "dist-emotion", "dist-problem-type",
                  "dist-strategy"):
        assert f'id="{ident}"' in page, ident
    assert page.count('<details class="dialogue"') == 12
    assert "keep ≥ 6" in page  # the judge threshold from the manifest's config


@needs_chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1280, 2000)
    # A blank page is ~12 KB with 4 distinct bytes and ~0% non-zero filtered scanlines; this page is ~300 KB.
    assert shot.stat().st_size > 60_000
    assert len(set(pixels)) >= 64
    assert 1 - pixels.count(0) / len(pixels) > 0.01


@needs_chromium
def test_rendered_dom_has_the_plot_elements(report, tmp_path):
    done = _chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = done.stdout
    assert "</html>" in dom, done.stderr[-2000:]
    for ident in ("score-sensibility", "score-rationality", "coverage-heatmap", "intensity-trajectories"):
        assert re.search(rf'<svg[^>]*id="{ident}"', dom), ident
    assert len(re.findall(r'class="bar kept"', dom)) >= 8
    corpus = read_corpus(report.parent.parent / "run")
    covered = len({(d.seed.emotion, d.seed.problem_type) for d in corpus.dialogues})
    assert len(re.findall(r'class="cell covered"', dom)) == covered
    assert len(re.findall(r'class="cell implausible"', dom)) > 0
    assert len(re.findall(r'<polyline class="trajectory"', dom)) == 60
    assert len(re.findall(r'<polyline class="mean"', dom)) == 1
    assert len(re.findall(r"<details[^>]*class=\"dialogue\"", dom)) == 12
    assert len(re.findall(r"<summary>", dom)) == 12


def test_report_without_a_catalog_draws_the_cells_it_saw(tmp_path):
    corpus_dir = make_corpus(tmp_path / "run", n=10, rejected=0)
    (corpus_dir / MANIFEST_FILE).unlink()
    corpus = read_corpus(corpus_dir)
    page = render_report(corpus, stats_for_corpus(corpus))
    assert "Only the cells seen in the corpus are drawn" in page
    assert page.count('class="cell covered"') == len({(d.seed.emotion, d.seed.problem_type)
                                                      for d in corpus.dialogues})
    assert 'class="cell implausible"' not in page


def test_report_of_a_corpus_with_nothing_kept_still_renders(tmp_path):
    corpus_dir = make_corpus(tmp_path / "run", n=3, rejected=4)
    (corpus_dir / KEPT_FILE).write_text("")
    out = write_report(corpus_dir, tmp_path / "r.html")
    page = out.read_text(encoding="utf-8")
    assert "No kept dialogue." in page and 'id="score-sensibility"' in page


def test_report_bad_input_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_report(tmp_path / "nope", tmp_path / "r.html")
    corpus_dir = make_corpus(tmp_path / "run", n=3, rejected=0)
    with pytest.raises(UserError, match="is a folder"):
        write_report(corpus_dir, tmp_path)
    shutil.rmtree(corpus_dir)
    corpus_dir.mkdir()
    with pytest.raises(UserError, match="holds no dialogues.jsonl") as err:
        write_report(corpus_dir, tmp_path / "r.html")
    assert "\n" not in str(err.value)
