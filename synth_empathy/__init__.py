"""synth-empathy: synthetic empathetic dialogue data."""

import os

# Nothing is fetched at run time: litellm and dspy would otherwise try to download model price/metadata maps.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from synth_empathy.api import Generator  # noqa: E402
from synth_empathy.config import RunConfig  # noqa: E402

__all__ = ["Generator", "RunConfig"]
