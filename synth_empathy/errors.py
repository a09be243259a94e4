"""Errors that carry one clear sentence for the user."""

from __future__ import annotations

import importlib
from types import ModuleType

from synth_empathy.redact import redact


class UserError(Exception):
    """Bad input (config, file, flag): the CLI prints the message and exits with code 2."""


def error_detail(exc: BaseException) -> str:
    """The error class and message of a failed call, as recorded in rejected.jsonl."""
    return redact(f"{type(exc).__name__}: {exc}")[:500]


def file_error(exc: BaseException, path: object | None = None) -> UserError:
    """One sentence for an error met reading or writing a user's file (`path`, else the one the error names)."""
    where = path if path is not None else getattr(exc, "filename", None)
    subject = f"{where}" if where is not None else "an input file"
    if isinstance(exc, UnicodeDecodeError):
        return UserError(f"{subject} is not UTF-8 text (byte {exc.start + 1})")
    if isinstance(exc, RecursionError):
        return UserError(f"{subject} nests its data deeper than can be read")
    if isinstance(exc, MemoryError):
        return UserError(f"{subject} is too large to read into memory")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return UserError(f"cannot use {subject}: {reason[0].lower() + reason[1:]}")
    return UserError(f"{subject} cannot be read: {error_detail(exc)}")


class RunError(Exception):
    """The run itself failed (model unreachable, ...): the CLI prints the message and exits with code 1."""


def require_extra(module: str, extra: str, what: str, name: str | None = None,
                  submodules: tuple[str, ...] = ()) -> ModuleType:
    """Import an optional dependency (and the `submodules` its extra brings), or raise one sentence naming
    what needs it and the extra that installs it.

    Example:
        >>> ray = require_extra("ray", "ray", "--engine ray", name="Ray", submodules=("ray.data",))  # doctest: +SKIP
    """
    try:
        found = importlib.import_module(module)
        for sub in submodules:
            importlib.import_module(sub)
    except ImportError as exc:
        raise UserError(f"{what} needs {name or module}, which is not installed: "
                        f"pip install 'synth-empathy[{extra}]'") from exc
    return found
