"""synth-empathy: synthetic empathetic dialogue data."""

import os

# Nothing is fetched at run time: litellm and dspy would otherwise try to download model price/metadata maps.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from synth_empathy.config import RunConfig  # noqa: E402

__all__ = ["Generator", "RunConfig"]


def __getattr__(name: str):
    # The API pulls in dspy (seconds of start-up); a command that never calls a model should not pay for it.
    if name == "Generator":
        from synth_empathy.api import Generator

        return Generator
    raise AttributeError(f"module 'synth_empathy' has no attribute {name!r}")
