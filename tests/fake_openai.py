"""A fake OpenAI-compatible HTTP server for the test suite (standard library only).

It runs ``http.server.ThreadingHTTPServer`` in a background daemon thread on
127.0.0.1 with an OS-assigned port, so real clients (the ``openai`` SDK, DSPy's
native lm15 engine, LiteLLM) can be pointed at it with ``base_url``/``api_base``.

Quick use::

    with FakeOpenAIServer() as server:              # or server.start() / server.stop()
        server.responder = ScriptedResponder(["first reply", "second reply"])
        server.faults.append(("status", 429, {"Retry-After": "0"}))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-fake")
        ...
        assert server.requests[-1].headers["authorization"] == "Bearer sk-test-fake"

Endpoints
    POST /v1/chat/completions  (also /chat/completions) -> ``chat.completion`` JSON
         (or an SSE stream of ``chat.completion.chunk`` when the body has ``"stream": true``)
    GET  /v1/models            (also /models)            -> one model
    GET  /v1/models/{id}                                  -> that model
    POST /v1/files (multipart: file, purpose)             -> a file object; GET /v1/files/{id}[/content]
    POST /v1/batches {input_file_id, endpoint, ...}       -> a batch object (status "validating")
    GET  /v1/batches/{id}                                 -> the batch; each retrieval moves it on:
         validating -> in_progress -> ... -> completed after ``server.batch_polls`` retrievals, when every
         request line of its input file is answered (responder, usage, quirks as for a chat completion) into
         an output file; ``server.batch_outcome = "failed" | "expired"`` ends it so instead
    anything else                                         -> 404 with an OpenAI-shaped error body

Replies
    ``server.responder(request_body: dict) -> str`` produces ``choices[i].message.content``
    (called ``n`` times when the request asks for ``n`` choices). The default,
    :func:`default_responder`, returns JSON generated from the request's
    ``response_format`` schema (see :func:`schema_example`) or a short plain-text
    empathetic sentence. If the responder raises, the server answers 500 with the
    exception text and appends the exception to ``server.errors``.

Faults (applied to chat-completion requests only; GET /models never consumes one)
    ``server.faults`` is a thread-safe ``collections.deque``; each chat-completion
    request pops the left-most fault. A fault is one of::

        ("status", 429, {"Retry-After": "1"})   # any status, optional extra headers
        ("status", 500)
        ("status", 500, {}, "worker crashed")    # ... and an error message of its own
        ("malformed",)                           # 200, content-type JSON, body not JSON
        ("hang", seconds)                        # sleep, then answer normally
        None                                     # explicit "no fault" for this request

    When the queue is empty, ``server.fault_rates`` (e.g.
    ``{"429": 0.1, "500": 0.05, "malformed": 0.05, "hang": 0.02}``; any numeric
    key is a status code) draws at most one fault per request from a
    ``random.Random(seed)``; probabilistic 429s carry ``Retry-After:
    server.rate_retry_after`` (default "0") and hangs last ``server.rate_hang_s``.
    ``server.latency_s`` is slept before every answer (faults included).
    Hangs and latency end early when the server stops.

Quirks (``server.quirks``, a set; how servers nobody here wrote behave)
    ``"json_schema_400"``  a ``json_schema`` response_format gets 400 "response_format of type
                           json_schema is not supported with this model" (hosted providers);
    ``"json_schema_500"``  any response_format but ``text``/``json_object`` gets the 500 that
                           llama-cpp-python's server answers (a pydantic error naming response_format);
    ``"no_response_format"`` any response_format at all gets a 400 naming it;
    ``"schema_ignored"``   response_format is accepted and dropped: the reply follows only the prompt;
    ``"max_completion_tokens_ignored"`` only ``max_tokens`` caps the reply (in words, finish_reason
                           "length"), as on llama-cpp-python's server; ``max_completion_tokens`` does nothing;
    ``"cached_prefix"``    usage reports ``prompt_tokens_details.cached_tokens``: the words that open
                           this prompt the way an earlier prompt opened (a provider's prompt cache).
    A reply "follows the prompt" like a model would: a JSON schema written in a message gets JSON
    that fits it (see :func:`prompt_schema`).

Recording
    ``server.requests`` is a list of :class:`RecordedRequest` (method, path,
    lower-cased headers including ``authorization``, parsed JSON body, the fault
    applied, the status answered). ``server.counters`` is a ``Counter`` with keys
    ``requests``, ``chat_completions``, ``models``, ``files_uploaded``, ``batches_created``, ``ok``, ``status_<code>``,
    ``malformed``, ``hang``, ``responder_error``, ``bad_request``, ``not_found``.
    The server never logs requests or headers (``log_message`` is silenced) and
    ``RecordedRequest.__repr__`` redacts the Authorization header.
"""

from __future__ import annotations

import collections
import copy
import json
import random
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "FakeOpenAIServer",
    "RecordedRequest",
    "ScriptExhausted",
    "ScriptedResponder",
    "chat_adapter_reply",
    "default_responder",
    "extract_schema",
    "prompt_schema",
    "schema_example",
]

DEFAULT_MODEL = "fake-model"
DEFAULT_TEXT = "I hear you. That sounds really hard."
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [ <html>502 Bad Gateway</html>'

Responder = Callable[[dict], str]


# --------------------------------------------------------------------------- schema examples


def extract_schema(response_format: Any) -> dict | None:
    """The JSON schema inside an OpenAI ``response_format`` value, or None.

    Accepts ``{"type": "json_schema", "json_schema": {"schema": {...}}}`` and the
    non-standard ``{"type": "json_object", "schema": {...}}`` (also a ``schema``
    key directly under ``json_schema``-typed formats some clients send).
    """
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        inner = response_format.get("json_schema")
        if isinstance(inner, Mapping) and isinstance(inner.get("schema"), Mapping):
            return dict(inner["schema"])
        if isinstance(response_format.get("schema"), Mapping):
            return dict(response_format["schema"])
    if kind == "json_object" and isinstance(response_format.get("schema"), Mapping):
        return dict(response_format["schema"])
    return None


_MAX_DEPTH = 12


def schema_example(schema: Mapping[str, Any]) -> Any:
    """Generate one instance that validates against ``schema`` (a JSON Schema dict).

    Deterministic. Objects get every listed property (required or not), integers
    and numbers respect minimum/maximum/exclusive bounds/multipleOf, ``enum`` and
    ``const`` give their (first) value, booleans are ``False``, strings are a short
    sentence cut/padded to maxLength/minLength (well-known ``format`` values get a
    valid literal), arrays get one item (or ``minItems`` items). ``$ref`` into
    ``$defs``/``definitions``, ``allOf`` (merged), ``anyOf``/``oneOf`` (first
    non-null branch) and nullable types (``["string", "null"]``) are handled;
    recursive schemas stop at a fixed depth by preferring null / empty arrays.
    ``pattern`` and ``uniqueItems`` with ``minItems > 1`` are not honoured.

    For a top-level object schema the result is a dict.
    """
    return _example(dict(schema), dict(schema), 0)


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> dict:
    if not ref.startswith("#"):
        raise ValueError(f"schema_example: only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return dict(node)


def _is_null_schema(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null" or schema.get("const", 0) is None or schema.get("enum") == [None]


def _example(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if schema is True or schema is None:
        return DEFAULT_TEXT
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema_example: a schema must be a dict, got {type(schema).__name__}")
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return _example({**target, **siblings}, root, depth + 1)
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if "enum" in schema and schema["enum"]:
        return copy.deepcopy(schema["enum"][0])
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve_ref(part["$ref"], root) if "$ref" in part else dict(part)
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return _example(merged, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema and schema[key]:
            options = list(schema[key])
            non_null = [o for o in options if not (isinstance(o, Mapping) and _is_null_schema(o))]
            nullable = len(non_null) < len(options)
            if depth >= _MAX_DEPTH and nullable:
                return None
            chosen = non_null[0] if non_null else options[0]
            siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return _example({**siblings, **chosen}, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [t for t in kind if t != "null"]
        if not non_null or (depth >= _MAX_DEPTH and "null" in kind):
            return None
        kind = non_null[0]
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema or "required" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        elif any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            kind = "number"
        else:
            kind = "string"

    if kind == "null":
        return None
    if kind == "boolean":
        return False
    if kind == "integer":
        return _integer_example(schema)
    if kind == "number":
        return _number_example(schema)
    if kind == "string":
        return _string_example(schema)
    if kind == "array":
        return _array_example(schema, root, depth)
    if kind == "object":
        return _object_example(schema, root, depth)
    raise ValueError(f"schema_example: unsupported type {kind!r}")


def _integer_example(schema: Mapping[str, Any]) -> int:
    import math

    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        low = math.floor(schema["exclusiveMinimum"]) + 1
    elif low is not None:
        low = math.ceil(low)
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    elif high is not None:
        high = math.floor(high)
    value = low if low is not None else (min(1, high) if high is not None else 1)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = -(-value // step) * step  # round up to a multiple, staying >= low
        if high is not None and value > high:
            value -= step
    return int(value)


def _number_example(schema: Mapping[str, Any]) -> float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    ex_low = schema.get("exclusiveMinimum")
    ex_high = schema.get("exclusiveMaximum")
    ex_low = None if isinstance(ex_low, bool) else ex_low
    ex_high = None if isinstance(ex_high, bool) else ex_high
    lower = ex_low if ex_low is not None else low
    upper = ex_high if ex_high is not None else high
    if lower is not None and upper is not None:
        value = (lower + upper) / 2
    elif lower is not None:
        value = lower + 1 if ex_low is not None else lower
    elif upper is not None:
        value = upper - 1 if ex_high is not None else min(0.5, upper)
    else:
        value = 0.5
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and lower is not None:
        import math

        value = math.ceil(lower / step) * step
        if ex_low is not None and value <= ex_low:
            value += step
    return float(value)


_FORMAT_EXAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00Z",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "duration": "PT1M",
}


def _string_example(schema: Mapping[str, Any]) -> str:
    text = _FORMAT_EXAMPLES.get(schema.get("format", ""), DEFAULT_TEXT)
    min_length = int(schema.get("minLength", 0) or 0)
    max_length = schema.get("maxLength")
    while len(text) < min_length:
        text = f"{text} {DEFAULT_TEXT}"
    if max_length is not None:
        text = text[: int(max_length)]
        if len(text) > min_length:
            text = text.rstrip() if len(text.rstrip()) >= min_length else text
    return text


def _array_example(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> list:
    min_items = int(schema.get("minItems", 0) or 0)
    max_items = schema.get("maxItems")
    prefix = schema.get("prefixItems")
    items_schema = schema.get("items", {})
    if isinstance(prefix, list):
        result = [_example(s, root, depth + 1) for s in prefix]
        if isinstance(items_schema, Mapping) and items_schema:
            while len(result) < min_items:
                result.append(_example(items_schema, root, depth + 1))
        return result
    count = max(min_items, 0 if depth >= _MAX_DEPTH else 1)
    if max_items is not None:
        count = min(count, int(max_items))
    if items_schema is False:
        return []
    return [_example(items_schema if items_schema is not None else {}, root, depth + 1) for _ in range(count)]


def _object_example(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict:
    properties = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    names = required if depth >= _MAX_DEPTH else list(properties) + [n for n in required if n not in properties]
    result = {}
    for name in names:
        result[name] = _example(properties.get(name, {}), root, depth + 1)
    min_props = int(schema.get("minProperties", 0) or 0)
    extra = schema.get("additionalProperties")
    index = 1
    while len(result) < min_props and extra is not False:
        result[f"key{index}"] = _example(extra if isinstance(extra, Mapping) else {}, root, depth + 1)
        index += 1
    return result


# --------------------------------------------------------------------------- responders


def prompt_schema(body: Mapping[str, Any]) -> dict | None:
    """The last JSON schema (an object with ``properties``) written in the request's messages, or None."""
    decoder = json.JSONDecoder()
    for message in reversed(body.get("messages") or []):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, str):
            continue
        found = None
        for start in (i for i, ch in enumerate(content) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(content, start)
            except ValueError:
                continue
            if isinstance(value, dict) and isinstance(value.get("properties"), dict):
                found = value
        if found is not None:
            return found
    return None


def default_responder(body: dict) -> str:
    """Schema-valid JSON for a ``response_format`` with a schema (or a schema written in the prompt),
    otherwise :data:`DEFAULT_TEXT`.

    ``{"type": "json_object"}`` without a schema gets ``{"response": DEFAULT_TEXT}``
    so that it is at least a JSON object.
    """
    response_format = body.get("response_format")
    schema = extract_schema(response_format) or prompt_schema(body)
    if schema is not None:
        return json.dumps(schema_example(schema))
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        return json.dumps({"response": DEFAULT_TEXT})
    return DEFAULT_TEXT


def chat_adapter_reply(fields: Mapping[str, Any] | None = None, **more: Any) -> str:
    """Render output fields the way DSPy's ChatAdapter parses them::

        [[ ## reply ## ]]
        ...
        [[ ## completed ## ]]

    Non-string values are JSON-encoded. Handy in a ``ScriptedResponder`` script.
    """
    values = {**(fields or {}), **more}
    parts = []
    for name, value in values.items():
        rendered = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"[[ ## {name} ## ]]\n{rendered}")
    parts.append("[[ ## completed ## ]]")
    return "\n\n".join(parts)


class ScriptExhausted(RuntimeError):
    """A non-cycling :class:`ScriptedResponder` was asked for more replies than scripted."""


class ScriptedResponder:
    """Return scripted replies in order; each item is a ``str`` or ``callable(body) -> str``.

    By default (``cycle=False``) asking for more replies than scripted raises
    :class:`ScriptExhausted` — an unexpected extra LM call is a bug the test should
    see (the server turns it into an HTTP 500 and records it in ``server.errors``).
    With ``cycle=True`` the script restarts from the beginning. Thread-safe;
    ``bodies`` keeps every request body it answered, ``calls`` counts them.
    """

    def __init__(self, replies: Iterable[str | Responder], *, cycle: bool = False):
        self.replies = list(replies)
        if not self.replies:
            raise ValueError("ScriptedResponder needs at least one reply")
        for reply in self.replies:
            if not isinstance(reply, str) and not callable(reply):
                raise TypeError(f"a scripted reply must be a str or a callable, got {type(reply).__name__}")
        self.cycle = cycle
        self.calls = 0
        self.bodies: list[dict] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        """Replies left before exhaustion (None when cycling)."""
        return None if self.cycle else max(0, len(self.replies) - self.calls)

    def __call__(self, body: dict) -> str:
        with self._lock:
            index = self.calls
            if index >= len(self.replies) and not self.cycle:
                raise ScriptExhausted(
                    f"ScriptedResponder exhausted: {len(self.replies)} replies scripted, request #{index + 1} arrived"
                )
            self.calls += 1
            self.bodies.append(body)
            reply = self.replies[index % len(self.replies)]
        result = reply(body) if callable(reply) else reply
        if not isinstance(result, str):
            raise TypeError(f"a scripted reply callable must return str, got {type(result).__name__}")
        return result


# --------------------------------------------------------------------------- quirks

QUIRKS = frozenset({"json_schema_400", "json_schema_500", "no_response_format", "schema_ignored",
                    "max_completion_tokens_ignored", "cached_prefix"})
JSON_SCHEMA_400 = "response_format of type json_schema is not supported with this model"
# What llama-cpp-python 0.3.36's server answers (HTTP 500) to response_format {"type": "json_schema", ...}.
LLAMA_CPP_500 = ("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                 "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
                 "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", "
                 "line 376, in create_chat_completion\n    POST /v1/chat/completions")


def _quirk_refusal(quirks: set[str], response_format: Any) -> tuple[int, str] | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if "no_response_format" in quirks and kind != "text":
        return 400, f"Unrecognized request argument supplied: response_format (type {kind})"
    if "json_schema_400" in quirks and kind == "json_schema":
        return 400, JSON_SCHEMA_400
    if "json_schema_500" in quirks and kind not in ("text", "json_object"):
        return 500, LLAMA_CPP_500
    return None


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedRequest:
    """One request as received. ``headers`` keys are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # parsed JSON (dict) or None; raw text if it was not JSON
    fault: tuple | None = None
    status: int | None = None
    usage: dict | None = None  # the usage answered, for a completion
    time: float = field(default_factory=time.time)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def api_key(self) -> str | None:
        """The bearer token sent, if any."""
        auth = self.authorization or ""
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @property
    def messages(self) -> list:
        return list(self.body.get("messages") or []) if isinstance(self.body, dict) else []

    def __repr__(self) -> str:
        headers = {k: ("<redacted>" if k in ("authorization", "api-key", "x-api-key") else v)
                   for k, v in self.headers.items()}
        return (f"RecordedRequest(method={self.method!r}, path={self.path!r}, status={self.status!r}, "
                f"fault={self.fault!r}, headers={headers!r}, body={self.body!r})")


# --------------------------------------------------------------------------- server


def _words(text: Any) -> int:
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):  # content parts
        return sum(_words(part.get("text", "")) if isinstance(part, Mapping) else _words(part) for part in text)
    return 0


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Whitespace words across every message's content."""
    messages = body.get("messages") or []
    return sum(_words(m.get("content")) for m in messages if isinstance(m, Mapping))


def _validate_fault(fault: Any) -> tuple | None:
    if fault is None:
        return None
    if not isinstance(fault, (tuple, list)) or not fault:
        raise ValueError(f"invalid fault {fault!r}")
    fault = tuple(fault)
    kind = fault[0]
    if kind == "status":
        if len(fault) not in (2, 3, 4) or not isinstance(fault[1], int) or not 100 <= fault[1] <= 599:
            raise ValueError(f"invalid status fault {fault!r}; use ('status', code[, headers[, message]])")
        if len(fault) >= 3 and not isinstance(fault[2], Mapping):
            raise ValueError(f"status fault headers must be a dict: {fault!r}")
        if len(fault) == 4 and not isinstance(fault[3], str):
            raise ValueError(f"status fault message must be a str: {fault!r}")
        return fault
    if kind == "malformed" and len(fault) == 1:
        return fault
    if kind == "hang" and len(fault) == 2 and isinstance(fault[1], (int, float)) and fault[1] >= 0:
        return fault
    raise ValueError(f"invalid fault {fault!r}; use ('status', code[, headers]), ('malformed',) or ('hang', seconds)")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    server: _Server

    # Never log: request lines/headers may carry credentials, and tests assert nothing is leaked.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        try:  # headers and body are separate writes; don't let Nagle delay the second one
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "PUT")

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline().strip().split(b";", 1)[0]
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
            for name, value in (headers or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            # The client gave up (timeout after a hang); nothing to answer.
            self.close_connection = True


class FakeOpenAIServer:
    """Fake OpenAI-compatible server; see the module docstring for the full contract.

    Args:
        responder: ``callable(body) -> str``; ``None`` means :func:`default_responder`.
        model: model id listed by ``/v1/models`` and echoed when a request names none.
        latency_s: seconds slept before every answer.
        fault_rates: probabilistic faults, e.g. ``{"429": 0.1, "500": 0.05, "malformed": 0.05, "hang": 0.02}``.
        seed: seed of the fault RNG (``server.rng``).
        faults: initial fault queue.
        rate_hang_s / rate_retry_after: duration of probabilistic hangs / Retry-After of probabilistic 429s.
        quirks: names from :data:`QUIRKS` (see the module docstring).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        model: str = DEFAULT_MODEL,
        latency_s: float = 0.0,
        fault_rates: Mapping[str, float] | None = None,
        seed: int = 0,
        faults: Iterable[tuple | None] = (),
        rate_hang_s: float = 5.0,
        rate_retry_after: str | None = "0",
        quirks: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.responder: Responder = responder or default_responder
        self.model = model
        self.latency_s = latency_s
        self.fault_rates: dict[str, float] = dict(fault_rates or {})
        self.seed = seed
        self.rng = random.Random(seed)
        self.rate_hang_s = rate_hang_s
        self.rate_retry_after = rate_retry_after
        self.quirks: set[str] = set(quirks)
        self._prompts: list[list[str]] = []  # earlier prompts' words, for "cached_prefix"
        self.host = host
        self._requested_port = port
        self._faults: collections.deque = collections.deque(_validate_fault(f) for f in faults)
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self.counters: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.files: dict[str, dict] = {}  # id -> {"object": file object, "content": bytes}
        self.batches: dict[str, dict] = {}  # id -> batch object (and "_polls")
        self.batch_polls = 2  # retrievals until a batch completes
        self.batch_outcome = "completed"  # or "failed" / "expired"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self.host, self._requested_port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-openai:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes hangs/latency sleeps
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # end idle keep-alive connections so handler threads exit
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Root URL without the /v1 prefix."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # ---------------------------------------------------------------- configuration

    @property
    def faults(self) -> collections.deque:
        return self._faults

    @faults.setter
    def faults(self, faults: Iterable[tuple | None]) -> None:
        self._faults = collections.deque(_validate_fault(f) for f in faults)

    def add_faults(self, *faults: tuple | None) -> None:
        """Validate and queue faults (``server.faults.append`` works too, validated on use)."""
        self._faults.extend(_validate_fault(f) for f in faults)

    def reset(self) -> None:
        """Forget recorded requests, errors, counters and queued faults; reseed the RNG."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.counters.clear()
            self._faults.clear()
            self._prompts.clear()
            self.rng = random.Random(self.seed)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    # ---------------------------------------------------------------- internals

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self.counters[key] += 1

    def _sleep(self, seconds: float) -> None:
        if seconds and seconds > 0:
            self._stopping.wait(seconds)

    def _next_fault(self) -> tuple | None:
        try:
            fault = self._faults.popleft()
        except IndexError:
            fault = self._random_fault()
        return _validate_fault(fault)

    def _random_fault(self) -> tuple | None:
        if not self.fault_rates:
            return None
        with self._lock:
            draw = self.rng.random()
        cumulative = 0.0
        for name, rate in self.fault_rates.items():
            cumulative += float(rate)
            if draw < cumulative:
                name = str(name)
                if name == "malformed":
                    return ("malformed",)
                if name == "hang":
                    return ("hang", float(self.rate_hang_s))
                code = int(name)
                if code == 429 and self.rate_retry_after is not None:
                    return ("status", code, {"Retry-After": self.rate_retry_after})
                return ("status", code)
        return None

    def _cached_words(self, body: Mapping[str, Any]) -> int:
        words = " ".join(str(m.get("content")) for m in body.get("messages") or [] if isinstance(m, Mapping)).split()
        with self._lock:
            cached = max((_common_prefix(words, earlier) for earlier in self._prompts), default=0)
            self._prompts.append(words)
        return cached

    def _error(self, handler: _Handler, record: RecordedRequest, status: int, message: str,
               kind: str, headers: Mapping[str, str] | None = None, param: str | None = None) -> None:
        code = {429: "rate_limit_exceeded", 401: "invalid_api_key", 404: "not_found"}.get(status, None)
        payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        record.status = status
        handler.send(status, json.dumps(payload).encode(), "application/json", headers)

    def _handle(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = RecordedRequest(method=method, path=path, headers=headers)
        with self._lock:
            self.requests.append(record)
            self.counters["requests"] += 1
        try:
            raw = handler.read_body()
        except (OSError, ValueError):
            handler.close_connection = True
            return
        if method == "POST" and path.rstrip("/").endswith("/files"):
            self._upload(handler, record, raw)
            return
        if raw:
            try:
                record.body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                record.body = raw.decode("utf-8", errors="replace")

        route = path.rstrip("/")
        if route.startswith("/v1"):
            route = route[3:]

        if method == "POST" and route == "/chat/completions":
            self._count("chat_completions")
            self._chat(handler, record)
            return
        self._sleep(self.latency_s)
        if self._batch_route(handler, record, method, route):
            return
        if method == "GET" and route == "/models":
            self._count("models", "ok")
            record.status = 200
            body = {"object": "list", "data": [self._model_card(self.model)]}
            handler.send(200, json.dumps(body).encode(), "application/json")
            return
        if method == "GET" and route.startswith("/models/"):
            self._count("models", "ok")
            record.status = 200
            handler.send(200, json.dumps(self._model_card(route[len("/models/"):])).encode(), "application/json")
            return
        self._count("not_found")
        self._error(handler, record, 404, f"Unknown request URL: {method} {path}", "invalid_request_error")

    # ---------------------------------------------------------------- the Batch API

    def _send_json(self, handler: _Handler, record: RecordedRequest, payload: dict) -> None:
        self._count("ok")
        record.status = 200
        handler.send(200, json.dumps(payload).encode(), "application/json")

    def _add_file(self, content: bytes, filename: str, purpose: str) -> dict:
        with self._lock:
            self._seq += 1
            file_id = f"file-fake{self._seq:06d}"
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[file_id] = {"object": obj, "content": content}
        return obj

    def _upload(self, handler: _Handler, record: RecordedRequest, raw: bytes) -> None:
        import email.parser
        import email.policy

        head = f"Content-Type: {handler.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()} \
            if message.is_multipart() else {}
        if "file" not in parts:
            self._count("bad_request")
            self._error(handler, record, 400, "a file upload needs a multipart 'file' part", "invalid_request_error")
            return
        purpose = parts["purpose"].get_content().strip() if "purpose" in parts else ""
        content = parts["file"].get_payload(decode=True) or b""
        record.body = {"purpose": purpose, "filename": parts["file"].get_filename(), "bytes": len(content)}
        self._count("files_uploaded")
        self._send_json(handler, record, self._add_file(content, parts["file"].get_filename() or "upload", purpose))

    def _batch_route(self, handler: _Handler, record: RecordedRequest, method: str, route: str) -> bool:
        parts = route.strip("/").split("/")
        if parts[0] == "files" and len(parts) in (2, 3) and method == "GET":
            stored = self.files.get(parts[1])
            if stored is None:
                self._error(handler, record, 404, f"No such File object: {parts[1]}", "invalid_request_error")
            elif len(parts) == 3 and parts[2] == "content":
                self._count("ok")
                record.status = 200
                handler.send(200, stored["content"], "application/octet-stream")
            else:
                self._send_json(handler, record, stored["object"])
            return True
        if parts == ["batches"] and method == "POST":
            body = record.body if isinstance(record.body, dict) else {}
            if body.get("input_file_id") not in self.files:
                self._error(handler, record, 400, f"No such File object: {body.get('input_file_id')}",
                            "invalid_request_error")
                return True
            with self._lock:
                self._seq += 1
                batch_id = f"batch_fake{self._seq:06d}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
                "status": "validating", "output_file_id": None, "error_file_id": None,
                "created_at": int(time.time()), "metadata": body.get("metadata"), "_polls": 0,
                "request_counts": {"total": 0, "completed": 0, "failed": 0}}
            self._count("batches_created")
            self._send_json(handler, record, self._public(self.batches[batch_id]))
            return True
        if parts[0] == "batches" and len(parts) == 2 and method == "GET":
            batch = self.batches.get(parts[1])
            if batch is None:
                self._error(handler, record, 404, f"No such Batch object: {parts[1]}", "invalid_request_error")
                return True
            self._advance(batch)
            self._send_json(handler, record, self._public(batch))
            return True
        return False

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _advance(self, batch: dict) -> None:
        if batch["status"] not in ("validating", "in_progress"):
            return
        batch["_polls"] += 1
        if batch["_polls"] < self.batch_polls:
            batch["status"] = "in_progress"
            return
        if self.batch_outcome == "failed":
            batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "fake: the input file is not valid", "line": 1}]})
            return
        if self.batch_outcome == "expired":
            batch.update(status="expired", expired_at=int(time.time()))
            return
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]]["content"].splitlines() if line]
        answers = [json.dumps({"id": f"batch_req_{i}", "custom_id": line["custom_id"],
                               "response": {"status_code": 200, "request_id": f"req_{i}",
                                            "body": self._completion(line["body"])}, "error": None})
                   for i, line in enumerate(lines)]
        output = self._add_file(("\n".join(answers) + "\n").encode(), "batch_output.jsonl", "batch_output")
        batch.update(status="completed", completed_at=int(time.time()), output_file_id=output["id"],
                     request_counts={"total": len(lines), "completed": len(lines), "failed": 0})

    def _completion(self, body: dict) -> dict:
        """One chat completion body as a batch answers it (no faults: a batch line fails only as a whole)."""
        reply = self.responder(body)
        prompt_tokens = count_prompt_tokens(body)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _words(reply),
                 "total_tokens": prompt_tokens + _words(reply)}
        if "cached_prefix" in self.quirks:
            usage["prompt_tokens_details"] = {"cached_tokens": self._cached_words(body)}
        with self._lock:
            self._seq += 1
            completion_id = f"chatcmpl-fake{self._seq:06d}"
        return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or self.model, "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}]}

    @staticmethod
    def _model_card(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}

    def _chat(self, handler: _Handler, record: RecordedRequest) -> None:
        try:
            fault = self._next_fault()
        except ValueError as exc:
            self.errors.append(exc)
            self._count("responder_error")
            self._error(handler, record, 500, f"fake server: {exc}", "server_error")
            return
        record.fault = fault
        self._sleep(self.latency_s)

        if fault is not None and fault[0] == "status":
            status = fault[1]
            self._count(f"status_{status}")
            extra = dict(fault[2]) if len(fault) >= 3 else {}
            kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            message = fault[3] if len(fault) == 4 else f"fake {status} {phrase}"
            self._error(handler, record, status, message, kind, extra)
            return
        if fault is not None and fault[0] == "malformed":
            self._count("malformed")
            record.status = 200
            handler.send(200, MALFORMED_BODY, "application/json")
            return
        if fault is not None and fault[0] == "hang":
            self._count("hang")
            self._sleep(fault[1])
            if self._stopping.is_set():
                handler.close_connection = True
                return

        body = record.body
        if not isinstance(body, dict):
            self._count("bad_request")
            self._error(handler, record, 400, "We could not parse the JSON body of your request.",
                        "invalid_request_error")
            return
        if not isinstance(body.get("messages"), list):
            self._count("bad_request")
            self._error(handler, record, 400, "'messages' is a required property", "invalid_request_error")
            return

        unknown = self.quirks - QUIRKS
        if unknown:
            self.errors.append(ValueError(f"unknown quirks {sorted(unknown)}; known: {sorted(QUIRKS)}"))
            self._count("responder_error")
            self._error(handler, record, 500, f"fake server: unknown quirks {sorted(unknown)}", "server_error")
            return
        refusal = _quirk_refusal(self.quirks, body.get("response_format"))
        if refusal is not None:
            status, message = refusal
            self._count(f"status_{status}", "quirk_refusal")
            kind = "internal_server_error" if status >= 500 else "invalid_request_error"
            self._error(handler, record, status, message, kind, param="response_format")
            return
        if "schema_ignored" in self.quirks:
            body = {k: v for k, v in body.items() if k != "response_format"}

        n = body.get("n") or 1
        n = n if isinstance(n, int) and 1 <= n <= 16 else 1
        try:
            replies = [self.responder(body) for _ in range(n)]
            for reply in replies:
                if not isinstance(reply, str):
                    raise TypeError(f"responder must return str, got {type(reply).__name__}")
        except Exception as exc:  # surfaced to the client as a 500, kept for the test
            self.errors.append(exc)
            self._count("responder_error")
            self._error(handler, record, 500, f"fake server responder failed: {type(exc).__name__}: {exc}",
                        "server_error")
            return

        with self._lock:
            self._seq += 1
            completion_id = f"chatcmpl-fake{self._seq:06d}"
        model = body.get("model") or self.model
        finish = "stop"
        cap = body.get("max_tokens")
        if "max_completion_tokens_ignored" in self.quirks and isinstance(cap, int):
            if any(_words(r) > cap for r in replies):
                replies = [" ".join(r.split()[:cap]) for r in replies]
                finish = "length"
        prompt_tokens = count_prompt_tokens(body)
        completion_tokens = sum(_words(r) for r in replies)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if "cached_prefix" in self.quirks:
            usage["prompt_tokens_details"] = {"cached_tokens": self._cached_words(body)}
        created = int(time.time())
        self._count("ok")
        record.status = 200
        record.usage = usage

        if body.get("stream"):
            handler.send(200, self._sse(completion_id, created, model, replies, usage, body),
                         "text/event-stream", {"Cache-Control": "no-cache"})
            return
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": reply, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
                for i, reply in enumerate(replies)
            ],
            "usage": usage,
        }
        handler.send(200, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _sse(completion_id: str, created: int, model: str, replies: list[str], usage: dict, body: dict) -> bytes:
        def chunk(choices: list, usage_value: Any = None) -> bytes:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": "fp_fake", "choices": choices}
            if usage_value is not None:
                data["usage"] = usage_value
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        events = []
        for i, reply in enumerate(replies):
            events.append(chunk([{"index": i, "delta": {"role": "assistant", "content": reply},
                                  "logprobs": None, "finish_reason": None}]))
            events.append(chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], usage))
        events.append(b"data: [DONE]\n\n")
        return b"".join(events)


_PROSE_WORDS = ("rent sister warehouse night shift money call worry sleep boss letter phone kitchen exam friend "
                "garden train winter doctor brother coffee weekend promise landlord neighbour interview bus ticket "
                "mother email deadline apartment birthday hospital paycheck laptop gym dog rain").split()
# Function words, so the rules' English check passes; drawn at random, so no n-gram repeats as a loop.
_GLUE = "the a and but to of in on at for with is was i you my it that this so just have can".split()


def judge_keeps(body: dict) -> str:
    """Schema JSON for a structured call, with judge scores high enough to keep the dialogue."""
    data = json.loads(default_responder(body))
    if isinstance(data, dict) and "sensibility" in data:
        data.update(sensibility=8, rationality=8)
    return json.dumps(data)


def keeping_responder(body: dict) -> str:
    """A whole run's worth of answers: varied English prose (so rules and dedup keep it, the same for the
    same request in any process), schema JSON for structured calls, and a judge that keeps."""
    if extract_schema(body.get("response_format")) or prompt_schema(body):
        return judge_keeps(body)
    rng = random.Random(zlib.crc32(json.dumps(body["messages"]).encode()))
    words = [rng.choice(_GLUE if rng.random() < 0.45 else _PROSE_WORDS) for _ in range(14)]
    return " ".join(words).capitalize() + "."
