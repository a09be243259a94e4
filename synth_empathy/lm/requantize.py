"""A Q8_0 copy of a GGUF, made once and cached, for faster prompt processing on a CPU.

llama.cpp's fast matrix paths for prompt batches (llamafile's tinyBLAS) take Q8_0, Q4_0 and float weights
but not Q4_1, the shipped model's type, whose prompts then run through the generic dot products. Converting
the shipped Q4_1 weights to Q8_0 (llama_model_quantize, allow_requantize) rounds each value to Q8_0's finer grid
(256 levels a block instead of 16), and the copy's next-token distributions are as close to the exact (float)
dequantization as the Q4_1 file's own (benchmarks/bench_local.py prints the KL divergences). On
2 CPUs it processes prompts about 2.4x faster at the same decoding speed. It takes under a second and
145 MB of disk, once per model file.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from synth_empathy.errors import UserError

# The target types a copy can be made in, by their [model] requantize name.
TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def cache_dir() -> Path:
    """Where converted models live: $SYNTH_EMPATHY_CACHE, else $XDG_CACHE_HOME/synth-empathy, else ~/.cache/…"""
    if os.environ.get("SYNTH_EMPATHY_CACHE"):
        return Path(os.environ["SYNTH_EMPATHY_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synth-empathy"


def copy_path(source: Path, to: str) -> Path:
    """The cached copy's path: named for the source file's name, size and modification time."""
    stat = source.stat()
    return cache_dir() / "models" / f"{source.stem}.{stat.st_size}-{stat.st_mtime_ns}.{to}.gguf"


@contextlib.contextmanager
def _quiet_llama() -> Iterator[None]:
    # llama_model_quantize logs a line per tensor through llama-cpp-python's callback, which prints below ERROR
    # until a Llama(verbose=False) has been made.
    logger = logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize(source: Path, target: Path, ftype: str, threads: int = 0) -> None:
    """Write `source` converted to llama.cpp's file type `ftype` (an LLAMA_FTYPE_* name) to `target`, quietly;
    OSError when llama.cpp fails. `threads` 0: llama.cpp's choice."""
    from llama_cpp import llama_cpp as capi

    params = capi.llama_model_quantize_default_params()
    params.ftype = getattr(capi, ftype)
    params.allow_requantize = True
    params.nthread = threads
    with _quiet_llama():
        code = capi.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if code != 0:
        raise OSError(f"llama_model_quantize returned {code}")


def requantized(source: Path, to: str) -> Path:
    """The path of `source` converted to type `to`, converting it first if no cached copy exists.

    Two processes converting at once each write their own temporary file and rename it into place. If the
    cache cannot be written, the source is returned as it is and one line on stderr says why.
    """
    if to not in TYPES:
        raise UserError(f"[model] requantize must be one of {', '.join(TYPES)} or \"off\", not {to!r}")
    target = copy_path(source, to)
    if target.is_file():
        return target
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        quantize(source, temporary, TYPES[to])
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        print(f"synth-empathy: could not write a {to.upper()} copy of {source.name} to {target.parent} ({exc}); "
              f"running it as it is (slower prompts); set SYNTH_EMPATHY_CACHE to a writable folder",
              file=sys.stderr)
        return source
    return target
