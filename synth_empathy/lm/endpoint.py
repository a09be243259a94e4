"""EndpointEngine: what one endpoint accepts, learnt from its refusals and remembered for the run.

Two things differ between OpenAI-compatible servers and matter here:

* the structured-output mode (see `structured.py`): the first refusal that names `response_format`,
  a 400 or a 500, moves the endpoint one step down the chain, and every LM calling it uses that mode;
* the token cap: lm15 sends OpenAI's `max_completion_tokens`, which llama-cpp-python's server and
  older servers ignore, so `max_tokens` goes along with the same value; a server that refuses
  `max_tokens` (OpenAI's reasoning models do) gets `max_completion_tokens` alone from then on.

The re-attempt after such a refusal is immediate and is not a retry of a transient failure: it sends
a different request. It sits inside ResilientEngine, which still owns back-off, limits and metering.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace

from dspy.lm15 import Request, Response

from synth_empathy.config import StructuredOutput
from synth_empathy.lm.structured import Mode, names_response_format, next_mode, shape
from synth_empathy.lm.usage import record_retry

log = logging.getLogger(__name__)

EndpointKey = tuple[str, str | None, str | None]  # backend, api_base, model
_NAMES_MAX_TOKENS = re.compile(r"\bmax_tokens\b")  # not max_completion_tokens: "_" is a word character


class EndpointState:
    """What the LMs calling one endpoint (one api_base and model) have learnt about it; thread-safe."""

    def __init__(self, mode: Mode = "json_schema") -> None:
        self._lock = threading.Lock()
        self.mode: Mode = mode
        self.takes_max_tokens = True

    def downgrade(self, failed: Mode) -> Mode | None:
        """The mode to use after `failed` was refused; None when there is nothing looser left."""
        with self._lock:
            if self.mode != failed:
                return self.mode  # another call learnt it first
            looser = next_mode(failed)
            if looser is not None:
                self.mode = looser
            return looser

    def refuse_max_tokens(self) -> None:
        with self._lock:
            self.takes_max_tokens = False


_states: dict[EndpointKey, EndpointState] = {}
_states_lock = threading.Lock()


def endpoint_state(key: EndpointKey) -> EndpointState:
    """The one state of an endpoint in this process: every LM built for it shares what was learnt."""
    with _states_lock:
        return _states.setdefault(key, EndpointState())


class EndpointEngine:
    """Wraps a dspy engine (lm15 or LiteLLM) and shapes each request as its endpoint takes it.

    Args:
        inner: the engine that sends one attempt.
        state: the endpoint's shared state (`endpoint_state(key)`).
        structured_output: "auto" detects the mode from refusals; any other value forces that mode.
        send_max_tokens: also send the token cap as `max_tokens` (OpenAI-compatible servers).

    Example:
        >>> engine = EndpointEngine(LM15Engine(router), endpoint_state(("openai", url, "m")))
        >>> lm = dspy.LM("openai/m", engine=ResilientEngine(engine), cache=False, num_retries=0)
    """

    def __init__(self, inner, state: EndpointState, *, structured_output: StructuredOutput = "auto",
                 send_max_tokens: bool = True) -> None:
        self.inner = inner
        self.state = state
        self.forced: Mode | None = None if structured_output == "auto" else structured_output
        self.send_max_tokens = send_max_tokens

    @property
    def mode(self) -> Mode:
        return self.forced or self.state.mode

    def complete(self, request: Request) -> Response:
        while True:
            mode = self.mode
            wire = self._wire(request, mode)
            try:
                return self.inner.complete(wire)
            except Exception as exc:
                if not self._learn(exc, wire, mode):
                    raise
                record_retry()

    def _wire(self, request: Request, mode: Mode) -> Request:
        request = shape(request, mode)
        cap = request.config.max_tokens
        if self.send_max_tokens and self.state.takes_max_tokens and cap is not None:
            extensions = {**(request.config.extensions or {}), "max_tokens": cap}
            request = replace(request, config=replace(request.config, extensions=extensions))
        return request

    def _learn(self, exc: Exception, wire: Request, mode: Mode) -> bool:
        """Whether `exc` refused something this engine can stop sending (then it tries again at once)."""
        extensions = wire.config.extensions or {}
        sent_format = wire.config.response_format is not None or "response_format" in extensions
        if sent_format and self.forced is None and names_response_format(exc):
            looser = self.state.downgrade(mode)
            if looser is not None:
                log.warning("the endpoint refused structured output as %s (%s); using %s from now on",
                            mode, _brief(exc), looser)
            return looser is not None
        status = getattr(exc, "status", None)
        if ("max_tokens" in extensions and status is not None and 400 <= status < 500
                and _NAMES_MAX_TOKENS.search(_brief(exc))):
            self.state.refuse_max_tokens()
            return True
        return False

    def stream(self, request: Request):
        return self.inner.stream(self._wire(request, self.mode))

    def close(self) -> None:
        self.inner.close()


def _brief(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)[:300]


def forget_endpoints() -> None:
    """Forget what was learnt about every endpoint (tests; a long-lived process whose server changed)."""
    with _states_lock:
        _states.clear()
