"""The fake OpenAI server (tests/fake_openai.py) works through the real client paths the product uses.

* the ``openai`` SDK;
* ``dspy.LM("openai/...", api_base=..., api_key=...)`` — DSPy 3.4 routes this to its native lm15
  engine (stdlib HTTP client, User-Agent ``lm15/stdlib``), not LiteLLM;
* ``dspy.LM(..., engine="litellm")`` — the compatibility engine, for comparison of error classes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Annotated, Any, Literal

import dspy
import openai
import pydantic
import pytest
from dspy.clients.backend_selection import select_backend
from dspy.utils.exceptions import (
    LMProviderError,
    LMRateLimitError,
    LMServerError,
    LMTimeoutError,
    LMTransportError,
    is_retryable_lm_error,
)
from fake_openai import (
    DEFAULT_TEXT,
    FakeOpenAIServer,
    ScriptedResponder,
    ScriptExhausted,
    chat_adapter_reply,
    default_responder,
    schema_example,
)

KEY = "sk-test-fake"
FAULT_IDS = ["429", "500", "malformed", "hang"]
MESSAGES = [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "I lost my job today"}]


@pytest.fixture(scope="module", autouse=True)
def _offline_model_metadata():
    # dspy (model_metadata) and litellm fetch a model price map from GitHub on first use; this env var
    # keeps both on their bundled snapshot: no network attempt, no 5 s urlopen timeout.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        yield


def make_lm(server: FakeOpenAIServer, **kwargs: Any) -> dspy.LM:
    return dspy.LM("openai/fake-model", api_base=server.base_url, api_key=KEY, cache=False, **kwargs)


def post(url: str, body: Any, timeout: float = 5.0) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                              "Authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# ---------------------------------------------------------------------------------------------- server basics


def test_fixture_server_basics(fake_openai: FakeOpenAIServer):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", fake_openai.base_url)
    assert fake_openai.port > 0 and fake_openai.running
    assert os.environ["OPENAI_API_KEY"] == KEY


def test_context_manager_and_stop_release_the_port():
    with FakeOpenAIServer() as server:
        url = server.base_url
        status, _ = post(url + "/chat/completions", {"model": "m", "messages": []})
        assert status == 200
    assert not server.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/models", timeout=1)
    server.start()  # restartable
    try:
        assert post(server.base_url + "/chat/completions", {"messages": []})[0] == 200
    finally:
        server.stop()


def test_path_without_v1_prefix_and_404(fake_openai: FakeOpenAIServer):
    status, raw = post(fake_openai.url + "/chat/completions", {"model": "m", "messages": [{"role": "user",
                                                                                         "content": "a b c"}]})
    body = json.loads(raw)
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "m"
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert body["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}

    status, raw = post(fake_openai.base_url + "/embeddings", {"input": "x"})
    assert status == 404 and "error" in json.loads(raw)
    assert post(fake_openai.base_url + "/chat/completions", b"{not json")[0] == 400
    assert fake_openai.counters["not_found"] == 1 and fake_openai.counters["bad_request"] == 1


# ---------------------------------------------------------------------------------------------- openai SDK


def test_openai_sdk_scripted_replies_usage_and_models(fake_openai: FakeOpenAIServer):
    fake_openai.responder = ScriptedResponder(
        ["Take your time, I am listening.", lambda body: "echo: " + body["messages"][-1]["content"]]
    )
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0, timeout=2)

    first = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    second = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "one two"}])

    assert first.choices[0].message.content == "Take your time, I am listening."
    assert first.object == "chat.completion" and first.model == "fake-model" and first.id.startswith("chatcmpl-")
    assert first.usage.prompt_tokens == 3 + 5  # whitespace words of every message
    assert first.usage.completion_tokens == 6
    assert first.usage.total_tokens == 14
    assert second.choices[0].message.content == "echo: one two"
    assert second.usage.prompt_tokens == 2 and second.usage.completion_tokens == 3

    assert [m.id for m in client.models.list().data] == ["fake-model"]
    chats = fake_openai.chat_requests
    assert len(chats) == 2 and chats[0].body["messages"] == MESSAGES
    assert chats[0].authorization == f"Bearer {KEY}" and chats[0].api_key == KEY
    assert fake_openai.counters["chat_completions"] == 2 and fake_openai.counters["models"] == 1


def test_openai_sdk_streaming_and_n(fake_openai: FakeOpenAIServer):
    fake_openai.responder = ScriptedResponder(["one", "two", "three"])
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0, timeout=2)
    chunks = list(client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one"
    assert chunks[-1].usage.completion_tokens == 1
    both = client.chat.completions.create(model="fake-model", messages=MESSAGES, n=2)
    assert [c.message.content for c in both.choices] == ["two", "three"]


def test_openai_sdk_retries_429_and_500(fake_openai: FakeOpenAIServer):
    fake_openai.add_faults(("status", 429, {"Retry-After": "0.01"}), ("status", 500, {"Retry-After": "0.01"}))
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=2, timeout=2)
    reply = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert [r.status for r in fake_openai.chat_requests] == [429, 500, 200]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (("status", 429, {"Retry-After": "1"}), openai.RateLimitError),
        (("status", 500), openai.InternalServerError),
        (("malformed",), json.JSONDecodeError),  # the SDK lets the decoder error escape
        (("hang", 1.0), openai.APITimeoutError),
    ],
    ids=FAULT_IDS,
)
def test_openai_sdk_fault_exceptions(fake_openai: FakeOpenAIServer, fault, expected):
    fake_openai.faults.append(fault)
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0, timeout=0.3)
    with pytest.raises(expected):
        client.chat.completions.create(model="fake-model", messages=MESSAGES)


def test_scripted_responder_exhaustion_and_cycle(fake_openai: FakeOpenAIServer):
    fake_openai.responder = ScriptedResponder(["only"])
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0, timeout=2)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "only"
    with pytest.raises(openai.InternalServerError, match="exhausted"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(fake_openai.errors[-1], ScriptExhausted)

    cycling = ScriptedResponder(["a", lambda body: "b"], cycle=True)
    assert [cycling({}) for _ in range(5)] == ["a", "b", "a", "b", "a"]
    assert cycling.remaining is None and cycling.calls == 5
    with pytest.raises(ValueError):
        ScriptedResponder([])


# ---------------------------------------------------------------------------------------------- dspy.LM


def test_dspy_lm_native_engine_returns_scripted_text(fake_openai: FakeOpenAIServer):
    fake_openai.responder = ScriptedResponder(["That must have been a shock.", "I'm here for you."])
    lm = make_lm(fake_openai)

    selection = select_backend(lm)
    assert selection.native is True  # lm15, not LiteLLM: api_key/api_base/timeout are native client keys
    assert selection.resolution.provider == "openai-chat"

    assert lm(messages=MESSAGES) == ["That must have been a shock."]
    assert lm("plain prompt") == ["I'm here for you."]

    first, second = fake_openai.chat_requests
    assert first.headers["user-agent"].startswith("lm15/")
    assert first.body["model"] == "fake-model"  # the "openai/" prefix is stripped on the wire
    assert first.body["messages"] == MESSAGES
    assert second.body["messages"] == [{"role": "user", "content": "plain prompt"}]
    assert first.api_key == KEY
    assert lm.history[-1]["usage"]["prompt_tokens"] == 2


class Feeling(pydantic.BaseModel):
    label: Literal["sad", "anxious", "angry"]
    intensity: int = pydantic.Field(ge=1, le=5)


class Turn(pydantic.BaseModel):
    reply: Annotated[str, pydantic.StringConstraints(max_length=20)]
    feelings: list[Feeling]
    primary: Feeling
    strategy: Literal["question", "reflection"] | None
    score: float = pydantic.Field(gt=0, lt=10)
    crisis: bool


def test_dspy_lm_json_schema_response_format(fake_openai: FakeOpenAIServer):
    lm = make_lm(fake_openai)

    # a pydantic model: dspy sends {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}
    (text,) = lm(messages=MESSAGES, response_format=Turn)
    turn = Turn.model_validate_json(text)
    assert turn.primary.label == "sad" and 1 <= turn.primary.intensity <= 5 and len(turn.feelings) == 1
    sent = fake_openai.chat_requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and "$defs" in sent["json_schema"]["schema"]

    # a raw dict, as the product's PlainAdapter sends it
    schema = {"name": "Turn", "schema": Turn.model_json_schema()}
    (text,) = lm(messages=MESSAGES, response_format={"type": "json_schema", "json_schema": schema})
    assert Turn.model_validate_json(text).crisis is False


def test_dspy_retries_429_and_500_then_succeeds(fake_openai: FakeOpenAIServer):
    fake_openai.add_faults(("status", 429, {"Retry-After": "0"}), ("status", 500, {"Retry-After": "0"}))
    fake_openai.responder = ScriptedResponder(["finally"])
    lm = make_lm(fake_openai, num_retries=2)
    start = time.monotonic()
    assert lm(messages=MESSAGES) == ["finally"]
    assert time.monotonic() - start < 1.5  # DSPy honours Retry-After (else it sleeps 1 s, 2 s, ...)
    assert [r.status for r in fake_openai.chat_requests] == [429, 500, 200]


NATIVE_FAULTS = [
    # fault, exact dspy class, retryable by dspy, status on the exception
    (("status", 429, {"Retry-After": "1"}), LMRateLimitError, True, 429),
    (("status", 500), LMServerError, True, 500),
    (("malformed",), LMProviderError, False, 200),
    (("hang", 1.0), LMTransportError, True, None),  # lm15's read timeout is a transport error
]


@pytest.mark.parametrize(("fault", "cls", "retryable", "status"), NATIVE_FAULTS, ids=FAULT_IDS)
def test_dspy_native_fault_exception_classes(fake_openai: FakeOpenAIServer, fault, cls, retryable, status):
    fake_openai.faults.append(fault)
    lm = make_lm(fake_openai, num_retries=0, timeout=0.3)
    with pytest.raises(cls) as info:
        lm(messages=MESSAGES)
    exc = info.value
    assert type(exc) is cls
    assert is_retryable_lm_error(exc) is retryable
    assert exc.status == status
    assert type(exc.__cause__).__module__ == "dspy._vendor.lm15.errors"
    if fault[:2] == ("status", 429):
        assert exc.retry_after == 1.0
    assert len(fake_openai.chat_requests) == 1


@pytest.fixture(scope="module")
def litellm_loaded():
    pytest.importorskip("litellm")  # one-off ~3.5 s import, paid here rather than inside a test


LITELLM_FAULTS = [
    (("status", 429, {"Retry-After": "1"}), LMRateLimitError, 429),  # retry_after is NOT carried over
    (("status", 500), LMServerError, 500),
    (("malformed",), LMServerError, 500),  # LiteLLM reports a non-JSON body as a 500
    (("hang", 1.0), LMTimeoutError, 408),
]


@pytest.mark.parametrize(("fault", "cls", "status"), LITELLM_FAULTS, ids=FAULT_IDS)
def test_dspy_litellm_engine_fault_exception_classes(fake_openai, litellm_loaded, fault, cls, status):
    lm = make_lm(fake_openai, num_retries=0, timeout=0.3, engine="litellm")
    assert select_backend(lm).native is False
    fake_openai.responder = ScriptedResponder(["via litellm"])
    assert lm(messages=MESSAGES) == ["via litellm"]
    assert fake_openai.chat_requests[-1].api_key == KEY

    fake_openai.faults.append(fault)
    with pytest.raises(cls) as info:
        lm(messages=MESSAGES)
    assert type(info.value) is cls
    assert info.value.status == status
    assert is_retryable_lm_error(info.value)


def test_dspy_async_calls_run_concurrently(fake_openai: FakeOpenAIServer):
    fake_openai.latency_s = 0.3
    lm = make_lm(fake_openai)

    async def main() -> list:
        try:
            return await asyncio.gather(*(lm.acall(f"hello {i}") for i in range(32)))
        finally:
            await lm.aclose()

    start = time.monotonic()
    outputs = asyncio.run(main())
    assert outputs == [[DEFAULT_TEXT]] * 32
    assert time.monotonic() - start < 1.5  # 32 x 0.3 s latency, served in parallel
    assert fake_openai.counters["ok"] == 32


def test_api_key_is_sent_but_never_logged(fake_openai: FakeOpenAIServer, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    lm = make_lm(fake_openai, num_retries=0)
    lm(messages=MESSAGES)
    fake_openai.faults.append(("status", 500))
    with pytest.raises(LMServerError) as info:
        lm(messages=MESSAGES)

    assert all(r.api_key == KEY for r in fake_openai.chat_requests)
    captured = capsys.readouterr()
    assert KEY not in caplog.text and KEY not in captured.out and KEY not in captured.err
    assert KEY not in str(info.value) and KEY not in repr(fake_openai.requests)
    assert KEY not in json.dumps(lm.history[-1], default=str)


# ---------------------------------------------------------------------------------------------- faults, concurrency


def test_concurrent_requests(fake_openai: FakeOpenAIServer):
    fake_openai.latency_s = 0.3
    results: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        status, _ = post(fake_openai.base_url + "/chat/completions",
                         {"messages": [{"role": "user", "content": f"hi {i}"}]})
        with lock:
            results.append(status)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == [200] * 40
    assert time.monotonic() - start < 1.5  # served in parallel: serially this would take 12 s
    assert fake_openai.counters["ok"] == 40


def test_fault_queue_order_latency_and_validation(fake_openai: FakeOpenAIServer):
    fake_openai.faults = [("status", 503), None, ("malformed",)]
    url = fake_openai.base_url + "/chat/completions"
    body = {"messages": [{"role": "user", "content": "x"}]}
    assert post(url, body)[0] == 503
    assert post(url, body)[0] == 200
    status, raw = post(url, body)
    assert status == 200 and raw.startswith(b"{") and not _is_json(raw)
    assert post(url, body)[0] == 200  # queue empty
    assert [r.fault for r in fake_openai.chat_requests] == [("status", 503), None, ("malformed",), None]

    urllib.request.urlopen(fake_openai.base_url + "/models", timeout=2).read()
    assert fake_openai.counters["models"] == 1  # GET /models never consumes a fault

    fake_openai.latency_s = 0.2
    start = time.monotonic()
    post(url, body)
    assert time.monotonic() - start >= 0.2

    with pytest.raises(ValueError):
        fake_openai.add_faults(("explode",))
    with pytest.raises(ValueError):
        fake_openai.add_faults(("status", 99))


def test_probabilistic_faults_are_seeded():
    rates = {"429": 0.1, "500": 0.05, "malformed": 0.05, "hang": 0.02}
    runs = []
    for _ in range(2):
        with FakeOpenAIServer(fault_rates=rates, seed=7, rate_hang_s=0.001) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)  # keep-alive: fast
            for _ in range(300):
                conn.request("POST", "/v1/chat/completions", body=b'{"messages": []}',
                             headers={"Content-Type": "application/json"})
                conn.getresponse().read()
            conn.close()
            runs.append(([r.fault for r in server.requests], dict(server.counters)))
    (faults_a, counters_a), (faults_b, counters_b) = runs
    assert faults_a == faults_b and counters_a == counters_b
    assert ("status", 429, {"Retry-After": "0"}) in faults_a
    for key, rate in (("status_429", 0.1), ("status_500", 0.05), ("malformed", 0.05), ("hang", 0.02)):
        assert 0 < counters_a[key] < 300 * rate * 2.5, (key, counters_a)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- responders


def test_default_responder_shapes():
    assert default_responder({"messages": []}) == DEFAULT_TEXT
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"]}
    assert json.loads(default_responder({"response_format": {"type": "json_object", "schema": schema}})) == {"n": 3}
    assert json.loads(default_responder(
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})) == {"n": 3}
    assert isinstance(json.loads(default_responder({"response_format": {"type": "json_object"}})), dict)
    assert default_responder({"response_format": {"type": "text"}}) == DEFAULT_TEXT


def test_chat_adapter_reply_parses_with_dspy_chat_adapter():
    class Sig(dspy.Signature):
        """Reply."""

        message: str = dspy.InputField()
        reply: str = dspy.OutputField()
        score: int = dspy.OutputField()

    parsed = dspy.ChatAdapter().parse(Sig, chat_adapter_reply(reply="I'm sorry.", score=4))
    assert parsed == {"reply": "I'm sorry.", "score": 4}


# ---------------------------------------------------------------------------------------------- schema_example


def validate(instance: Any, schema: Any, root: dict | None = None, path: str = "$") -> None:
    """A tiny JSON-schema validator covering what schema_example claims to support."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        validate(instance, target, root, path)
        schema = {k: v for k, v in schema.items() if k != "$ref"}
    for sub in schema.get("allOf", []):
        validate(instance, sub, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = 0
            for sub in schema[key]:
                try:
                    validate(instance, sub, root, path)
                    ok += 1
                except AssertionError:
                    pass
            assert (ok == 1) if key == "oneOf" else ok >= 1, f"{path}: no {key} branch matches {instance!r}"
    if "const" in schema:
        assert instance == schema["const"], path
    if "enum" in schema:
        assert instance in schema["enum"], f"{path}: {instance!r} not in enum"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        checks = {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
        }
        assert any(checks[k](instance) for k in kinds), f"{path}: {instance!r} is not {kinds}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema:
            assert instance >= schema["minimum"], path
        if "maximum" in schema:
            assert instance <= schema["maximum"], path
        if "exclusiveMinimum" in schema:
            assert instance > schema["exclusiveMinimum"], path
        if "exclusiveMaximum" in schema:
            assert instance < schema["exclusiveMaximum"], path
        if "multipleOf" in schema:
            assert math.isclose(instance / schema["multipleOf"], round(instance / schema["multipleOf"])), path
    if isinstance(instance, str):
        assert len(instance) >= schema.get("minLength", 0), path
        assert len(instance) <= schema.get("maxLength", math.inf), path
    if isinstance(instance, list):
        assert len(instance) >= schema.get("minItems", 0), path
        assert len(instance) <= schema.get("maxItems", math.inf), path
        for i, item in enumerate(instance):
            validate(item, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            assert name in instance, f"{path}: missing {name}"
        for name, value in instance.items():
            if name in properties:
                validate(value, properties[name], root, f"{path}.{name}")
            else:
                assert schema.get("additionalProperties", True) is not False, f"{path}: extra {name}"


SCHEMAS = {
    "enum": {"type": "string", "enum": ["validation", "question", "advice"]},
    "int-range": {"type": "integer", "minimum": 3, "maximum": 7},
    "int-exclusive-multiple": {"type": "integer", "exclusiveMinimum": 10, "maximum": 30, "multipleOf": 4},
    "int-only-max": {"type": "integer", "maximum": -5},
    "number-range": {"type": "number", "minimum": 0, "maximum": 10},
    "number-exclusive": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "string-lengths": {"type": "string", "minLength": 60, "maxLength": 80},
    "short-string": {"type": "string", "maxLength": 5},
    "formats": {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                                 "mail": {"type": "string", "format": "email"}}},
    "nullable": {"type": ["null", "integer"], "minimum": 2},
    "const-bool": {"type": "object", "properties": {"v": {"const": 2}, "ok": {"type": "boolean"}},
                   "required": ["v", "ok"], "additionalProperties": False},
    "array-min-items": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 4},
    "nested-ref": {
        "type": "object",
        "$defs": {
            "Strategy": {"type": "string", "enum": ["reflect", "ask"]},
            "Step": {"type": "object", "properties": {"strategy": {"$ref": "#/$defs/Strategy"},
                                                      "weight": {"type": "number", "minimum": 0.5, "maximum": 1}},
                     "required": ["strategy", "weight"], "additionalProperties": False},
        },
        "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
                       "first": {"$ref": "#/$defs/Step"},
                       "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]}},
        "required": ["steps", "first", "note"],
        "additionalProperties": False,
    },
    "allOf": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 5}},
                         "required": ["a"]},
                        {"properties": {"b": {"enum": [True]}}, "required": ["b"]}]},
    "untyped": {"properties": {"x": {}}, "required": ["x"]},
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schema_example_validates(name):
    schema = SCHEMAS[name]
    instance = schema_example(schema)
    validate(instance, schema)
    json.dumps(instance)
    try:  # cross-check with the reference implementation when it happens to be installed
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_schema_example_specific_values():
    assert schema_example(SCHEMAS["enum"]) == "validation"
    assert schema_example(SCHEMAS["int-range"]) == 3
    assert schema_example(SCHEMAS["int-exclusive-multiple"]) == 12
    assert schema_example({"type": "boolean"}) is False
    assert len(schema_example(SCHEMAS["array-min-items"])) == 3
    assert schema_example(SCHEMAS["nested-ref"])["first"]["strategy"] == "reflect"


class Node(pydantic.BaseModel):
    name: str
    children: list[Node] = []


class Dialogue(pydantic.BaseModel):
    turns: list[Turn] = pydantic.Field(min_length=2)
    mood: Feeling | None = None
    tags: dict[str, int] = {}
    tree: Node


@pytest.mark.parametrize("model", [Feeling, Turn, Dialogue, Node])
def test_schema_example_pydantic_models(model: type[pydantic.BaseModel]):
    schema = model.model_json_schema()
    instance = schema_example(schema)
    model.model_validate(instance)
    validate(instance, schema)
