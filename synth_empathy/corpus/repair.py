"""Repair what a crash can leave at the end of a record file, and move anything else odd to a quarantine file.

Records are appended whole, each line written with its newline in one call, so a crash (SIGKILL, power loss)
can leave only a last line without its newline: cut mid-record, or NUL bytes a filesystem left. That is
repaired. A complete, newline-ended last line that does not parse, or a file holding no complete line at all,
is not what a crash makes: those bytes are moved to NAME.quarantine.jsonl (appended, fsynced before the
record file is cut) and a warning says so. Nothing is ever deleted without a copy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def quarantine_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.quarantine{path.suffix}")


def repair_torn_tail(path: Path) -> bool:
    """Repair or quarantine a bad last line of `path`; True if the file changed.

    A last line that is a complete record but lost its newline gets the newline back.
    """
    if not path.exists() or path.stat().st_size == 0:
        return False
    start, last, newline = _last_line(path)
    if not last.strip():  # blank lines only: readers skip them
        return False
    if _is_record(last):
        if newline:
            return False
        _append(path, b"\n")
        return True
    if not newline and start > 0:  # a torn write: only the record being written is lost, and made again
        _move_tail(path, start)
        _warn(f"{path}: repaired a last line cut by a crash ({len(last):,} bytes, kept in {quarantine_path(path)}); "
              f"its seed is made again")
        return True
    why = ("its last line is complete but is not a JSON record" if newline
           else "it holds no complete line")
    _move_tail(path, start)
    _warn(f"{path}: {why}; moved {len(last):,} bytes to {quarantine_path(path)} and left the rest as it was")
    return True


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _move_tail(path: Path, start: int) -> None:
    with open(path, "r+b") as f:
        f.seek(start)
        tail = f.read()
        quarantine = tail if tail.endswith(b"\n") else tail + b"\n"
        _append(quarantine_path(path), quarantine)  # safely elsewhere before the record file loses it
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())


def _last_line(path: Path, chunk: int = 1 << 16) -> tuple[int, bytes, bool]:
    """(offset, bytes, ends with a newline) of the last non-empty line, reading only the file's tail."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        read = min(size, chunk)
        while True:
            f.seek(size - read)
            tail = f.read(read)
            body = tail.rstrip(b"\n")
            cut = body.rfind(b"\n")
            if cut >= 0 or read == size:
                start = size - read + cut + 1
                return start, body[cut + 1:], tail.endswith(b"\n")
            read = min(size, read * 2)


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
