"""Structured-output modes: how a JSON schema reaches an endpoint, from the strictest to the loosest.

The adapter always asks for `{"type": "json_schema", ...}`; endpoints differ in what they take:

* `json_schema`: the OpenAI shape (`response_format.json_schema.schema`), enforced by the server;
* `json_object_schema`: `{"type": "json_object", "schema": ...}`, what llama-cpp-python's server
  (and Anyscale-style servers) take and turn into a grammar;
* `json_object`: JSON mode without a schema, so the schema is also written into the prompt;
* `prompt`: no `response_format` at all; the schema is in the prompt and the adapter validates.

In the last two the answer is only as good as the model's reading of the prompt; the adapter parses it,
validates it with pydantic and asks once more with the error when it does not fit.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, Literal, get_args

from dspy.lm15 import Request, TextPart

from synth_empathy.lm.local import grammar_schema

Mode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
CHAIN: tuple[Mode, ...] = get_args(Mode)  # the fallback order

# A refusal that names the structured-output request: "response_format of type json_schema is not
# supported", llama.cpp's 500 on an unknown response_format type, LiteLLM's UnsupportedParamsError.
_NAMES_RESPONSE_FORMAT = re.compile(r"response_format|json_schema", re.IGNORECASE)


def next_mode(mode: Mode) -> Mode | None:
    """The next, looser mode of the chain; None after `prompt`."""
    index = CHAIN.index(mode)
    return CHAIN[index + 1] if index + 1 < len(CHAIN) else None


def names_response_format(exc: BaseException) -> bool:
    """Whether a failed attempt was refused for its `response_format` (whatever the status code)."""
    status = getattr(exc, "status", None)
    if status is not None and not 400 <= status < 600:
        return False
    return bool(_NAMES_RESPONSE_FORMAT.search(str(getattr(exc, "message", None) or exc)))


def schema_instruction(schema: dict[str, Any]) -> str:
    """What the prompt says when the endpoint does not enforce the schema itself."""
    return ("Answer with only a JSON object, no other text, that validates against this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False))


def shape(request: Request, mode: Mode) -> Request:
    """`request` (which asks for `json_schema`, or for nothing) as an endpoint in `mode` takes it."""
    fmt = request.config.response_format
    if mode == "json_schema" or fmt is None or fmt.get("type") != "json_schema":
        return request
    schema = fmt["schema"]
    config = request.config
    if mode == "json_object_schema":
        # lm15's canonical json_object has no schema slot; the wire shape goes through extensions,
        # which lm15 writes over its own `response_format` key. This is llama.cpp's shape, and its
        # schema-to-grammar conversion ignores minimum/maximum: the schema goes as the in-process engine
        # sends it, small integer ranges enumerated and free strings bounded (a subset of the same answers).
        wire_schema = grammar_schema(schema)
        extensions = {**(config.extensions or {}), "response_format": {"type": "json_object", "schema": wire_schema}}
        return replace(request, config=replace(config, response_format={"type": "json_object"},
                                                extensions=extensions))
    request = _with_system_note(request, schema_instruction(schema))
    fmt_now = {"type": "json_object"} if mode == "json_object" else None
    return replace(request, config=replace(request.config, response_format=fmt_now))


def _with_system_note(request: Request, note: str) -> Request:
    # Appended to the system message, the stable part of every prompt: a cached prefix stays cacheable.
    system = request.system
    if system is None:
        return replace(request, system=note)
    if isinstance(system, str):
        return replace(request, system=f"{system}\n\n{note}")
    return replace(request, system=(*system, TextPart(text="\n\n" + note)))
