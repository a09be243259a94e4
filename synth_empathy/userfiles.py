"""Reading the user's files: UTF-8 text in bounded lines, and one sentence naming the file when it cannot be read.

Every reader of a file the user gave (config, catalog, corpus, dataset, programs) goes through `reading`
or these helpers, so a file that is not UTF-8, nests too deep, or cannot be opened becomes a UserError
that says which file, instead of a traceback from deep inside a parser.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from synth_empathy.errors import UserError, file_error

# One record per line: a line longer than this is not a record we wrote, and reading it whole (then parsing,
# shingling it) is what ran a machine out of memory.
MAX_LINE_BYTES = 16 * 1024 * 1024


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn the errors of reading `path` (not UTF-8, too deeply nested, unreadable) into one UserError naming it."""
    try:
        yield
    except UserError:
        raise
    except (OSError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise file_error(exc, path) from exc


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole of a (small) text file the user gave."""
    with reading(path):
        return Path(path).read_text(encoding=encoding)


def iter_lines(path: Path, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line, streamed; a line over `max_bytes` or not UTF-8 is a UserError."""
    with reading(path), open(path, "rb") as f:
        number = 0
        while raw := f.readline(max_bytes + 1):
            number += 1
            if len(raw) > max_bytes:
                raise UserError(f"{path} line {number} is longer than {max_bytes // 2**20} MiB, "
                                f"the most one record may hold")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path} line {number} is not UTF-8 text (byte {exc.start + 1})") from exc
            yield number, text


def check_out(path: Path, kind: str, flag: str = "--out") -> None:
    """Before any work: `path` can be written as a `kind` ("dir", "file", or "any"), else one UserError.

    Probes the nearest existing folder with a temporary file, which is what decides (a read-only mount, no
    permission, a file where a folder must be) whoever runs it, root included.
    """
    path = Path(path)
    if path.exists():
        if kind == "dir" and not path.is_dir():
            raise UserError(f"{flag} {path} is a file; it needs a folder")
        if kind == "file" and path.is_dir():
            raise UserError(f"{flag} {path} is a folder; it needs a file name")
    ancestor = path if path.is_dir() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{flag} {path} cannot be made: {ancestor} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise UserError(f"{flag} {path} cannot be written: {ancestor} is not writable "
                        f"({(exc.strerror or type(exc).__name__).lower()})") from exc
