"""Repair only what a crash can leave; anything else odd goes to a quarantine file, with a warning."""

from runs import scripted_run

from synth_empathy.corpus.repair import quarantine_path, repair_torn_tail
from synth_empathy.corpus.store import KEPT_FILE

GOOD = b'{"id": "d1"}\n{"id": "d2"}\n'


def test_a_complete_last_line_with_a_bad_byte_is_quarantined_not_deleted(tmp_path, capsys):
    path = tmp_path / "dialogues.jsonl"
    bad = b'{"id": "d3", "text": "caf\xe9"}\n'
    path.write_bytes(GOOD + bad)
    assert repair_torn_tail(path) is True
    assert path.read_bytes() == GOOD
    assert quarantine_path(path).read_bytes() == bad
    err = capsys.readouterr().err
    assert "warning:" in err and "is complete but is not a JSON record" in err and str(quarantine_path(path)) in err


def test_a_64_kb_file_with_no_newline_is_moved_to_quarantine_never_lost(tmp_path, capsys):
    path = tmp_path / "dialogues.jsonl"
    blob = b"x" * (64 * 1024)
    path.write_bytes(blob)
    assert repair_torn_tail(path) is True
    assert quarantine_path(path).read_bytes() == blob + b"\n"
    assert "holds no complete line; moved 65,536 bytes" in capsys.readouterr().err


def test_a_torn_last_line_is_cut_and_its_bytes_kept(tmp_path, capsys):
    path = tmp_path / "dialogues.jsonl"
    path.write_bytes(GOOD + b'{"id": "d3", "tu')
    assert repair_torn_tail(path) is True
    assert path.read_bytes() == GOOD and quarantine_path(path).read_bytes() == b'{"id": "d3", "tu\n'
    assert "cut by a crash" in capsys.readouterr().err


def test_a_resume_over_a_quarantined_line_remakes_that_seed(tmp_path, capsys):
    scripted_run(tmp_path, 3)
    kept = tmp_path / "out" / KEPT_FILE
    lines = kept.read_bytes().splitlines(keepends=True)
    kept.write_bytes(b"".join(lines[:-1]) + lines[-1][:-5] + b"\xff" + lines[-1][-4:])  # one bad byte, newline kept
    manifest = scripted_run(tmp_path, 3)
    assert manifest.counts["kept"] == 3 and len(kept.read_bytes().splitlines()) == 3
    assert quarantine_path(kept).exists() and "warning:" in capsys.readouterr().err
