"""Errors that carry one clear sentence for the user."""

from __future__ import annotations

import importlib
from types import ModuleType


class UserError(Exception):
    """Bad input (config, file, flag): the CLI prints the message and exits with code 2."""


def error_detail(exc: BaseException) -> str:
    """The error class and message of a failed call, as recorded in rejected.jsonl."""
    return f"{type(exc).__name__}: {exc}"[:500]


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
