"""One rule for every writer: never delete or replace what the command did not write, and never an input.

`check_outputs` refuses an output that is an input or a folder holding one, and (without --overwrite) an
output file that exists. A writer that replaces a whole folder on --overwrite (the hf export) records what it
wrote in a marker file, `WRITTEN`, and `remove_written` deletes those files only, never anything else there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from synth_empathy.corpus.lock import LOCK
from synth_empathy.errors import UserError

WRITTEN = ".synth-empathy-written.json"


def _holds(folder: Path, path: Path) -> bool:
    return path == folder or folder in path.parents


def check_outputs(outputs: Sequence[Path], inputs: Sequence[Path] = (), *, overwrite: bool | None = None,
                  flag: str = "--out") -> None:
    """UserError (one sentence) unless writing every path in `outputs` is safe.

    Args:
        outputs: every file or folder the command will write (siblings such as OUT.duplicates.jsonl too).
        inputs: every file or folder it reads; an output may neither be one nor hold one.
        overwrite: False refuses an existing output file, True allows replacing it; None leaves existing
            outputs to the caller (a folder that a resume continues).

    Example:
        >>> check_outputs([Path("kept.jsonl")], [Path("in.jsonl")], overwrite=False)  # doctest: +SKIP
    """
    resolved = [(given, Path(given).resolve()) for given in inputs]
    for out in outputs:
        target = Path(out).resolve()
        for given, source in resolved:
            if _holds(target, source):
                what = "is" if target == source else "holds"
                raise UserError(f"{flag} {out} {what} the input {given}; the command never replaces its input, "
                                f"choose another {flag}")
        if overwrite is False and Path(out).is_file():
            raise UserError(f"{flag} {out} already exists; choose another path or pass --overwrite")


def foreign_entries(folder: Path) -> list[str]:
    """Names in `folder` that its marker does not list (the lock file aside), sorted."""
    if not folder.is_dir():
        return []
    written = set(_written(folder) or ())
    return sorted(p.name for p in folder.iterdir() if p.name not in (LOCK, WRITTEN) and p.name not in written
                  and not any(w.startswith(p.name + "/") for w in written))


def _written(folder: Path) -> list[str] | None:
    try:
        names = json.loads((folder / WRITTEN).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else None


def has_marker(folder: Path) -> bool:
    return _written(folder) is not None


def remove_written(folder: Path) -> None:
    """Delete the files `folder`'s marker lists (then folders they leave empty); nothing else."""
    names = _written(folder) or []
    root = folder.resolve()
    for name in names:
        path = (folder / name).resolve()
        if root not in path.parents:  # a marker naming ../x or /x does not get to delete it
            continue
        if path.is_file() or path.is_symlink():
            path.unlink()
    for name in sorted(names, key=lambda n: -n.count("/")):
        for parent in Path(name).parents:
            if parent != Path("."):
                try:
                    (folder / parent).rmdir()
                except OSError:  # not empty: it holds something this command did not write
                    pass
    (folder / WRITTEN).unlink(missing_ok=True)


def record_written(folder: Path, before: set[Path]) -> None:
    """Write the marker: every file under `folder` now that was not in `before` (as `files_under` lists)."""
    files = sorted(str(p.relative_to(folder)) for p in files_under(folder) - before
                   if p.name not in (LOCK, WRITTEN))
    tmp = folder / (WRITTEN + ".tmp")
    tmp.write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")
    os.replace(tmp, folder / WRITTEN)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()
