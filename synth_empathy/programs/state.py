"""Saved program state (`optimize` writes it, `generate --programs` reads it): instructions and demos only.

DSPy's Module.load would also restore a predictor's `lm` (another model and host, bypassing the configured
endpoint, limiter, retries and metering) and set any other key as an attribute. A saved program is data we
trust only for what optimizing changes, so the file is checked here and only those parts are loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dspy

from synth_empathy.errors import UserError
from synth_empathy.userfiles import read_text, reading

# What dspy's Predict.dump_state writes besides instructions and demos, and the only value we accept for it.
_EMPTY_AS_SAVED: dict[str, Any] = {"traces": [], "train": [], "lm": None}


def _refuse(path: Path, what: str) -> UserError:
    return UserError(f"{path} is not a saved program we load: {what} (saved programs carry instructions and "
                     f"demos only)")


def _predictor_state(path: Path, name: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _refuse(path, f"'{name}' is not an object")
    for key, value in entry.items():
        if key in _EMPTY_AS_SAVED:
            if value != _EMPTY_AS_SAVED[key]:
                raise _refuse(path, f"'{name}' sets '{key}'")
        elif key not in ("signature", "demos"):
            raise _refuse(path, f"'{name}' has '{key}'")
    signature, demos = entry.get("signature"), entry.get("demos", [])
    if not isinstance(signature, dict) or not isinstance(signature.get("instructions"), str) or set(signature) - {
            "instructions", "fields"}:
        raise _refuse(path, f"'{name}' needs a signature of instructions and fields")
    fields = signature.get("fields", [])
    if not isinstance(fields, list) or not all(
            isinstance(f, dict) and set(f) <= {"prefix", "description"} and all(isinstance(v, str) for v in f.values())
            for f in fields):
        raise _refuse(path, f"the signature fields of '{name}' are not prefix/description pairs")
    if not isinstance(demos, list) or not all(isinstance(d, dict) for d in demos):
        raise _refuse(path, f"the demos of '{name}' are not a list of objects")
    return {"signature": {"instructions": signature["instructions"], "fields": fields}, "demos": demos,
            **_EMPTY_AS_SAVED}


def load_program_state(module: dspy.Module, path: Path, program: str) -> None:
    """Load the instructions and demos saved in `path` into `module`; one UserError for anything else."""
    with reading(path):
        try:
            state = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not a saved {program} program: not valid JSON ({exc.msg}, line "
                            f"{exc.lineno})") from exc
    if not isinstance(state, dict):
        raise _refuse(path, "the file is not a JSON object")
    predictors = dict(module.named_predictors())
    unknown = sorted(set(state) - set(predictors) - {"metadata"})
    if unknown:
        raise _refuse(path, f"'{unknown[0]}' is not a predictor of the {program} program "
                            f"(it has {', '.join(predictors)})")
    missing = [name for name in predictors if name not in state]
    if missing:
        raise UserError(f"{path} is not a saved {program} program: it has no state for '{missing[0]}'")
    clean = {name: _predictor_state(path, name, state[name]) for name in predictors}
    try:
        module.load_state(clean)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a saved {program} program: {exc}") from exc
