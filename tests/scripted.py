"""A scripted in-process engine for dspy.LM: the same path as the local backend, with canned answers.

Structured calls (a JSON-schema response_format) get a schema-valid object, with per-signature
overrides; prose calls get the next line of a script, so dialogues differ and are readable.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Callable, Iterable

import dspy
from dspy.lm15 import Message, Request, Response, Usage, response_to_events
from fake_openai import schema_example

PROSE = [
    "I lost my job at the warehouse yesterday and I can't stop replaying the call.",
    "That sounds like a real shock, losing the job you counted on. What has been the hardest part since the call?",
    "Honestly it's telling my sister, she lent me money last month for the deposit.",
    "So it's not only the job, it's the weight of facing your sister after she helped you. That's a lot to carry.",
    "Yeah. I keep thinking she'll see me as someone who always needs rescuing.",
    "Feeling like a burden to someone you love hurts. Would it help to think through what you want to say to her?",
    "Maybe. I think I just needed to say it out loud to someone first.",
    "I'm glad you said it here. You reached out instead of hiding it, and that takes courage.",
]


def varied_prose(seed: int = 0) -> Callable[[list[dict]], str]:
    """English sentences that differ call to call, so rules and dedup let them through."""
    rng = random.Random(seed)
    words = "rent sister warehouse night shift money call worry sleep boss letter phone kitchen".split()
    return lambda messages: "I keep thinking about the " + " and the ".join(rng.choice(words) for _ in range(5)) + "."


class ScriptedEngine:
    def __init__(self, prose: Iterable[str] | Callable[[list[dict]], str] | None = None,
                 structured: dict[str, dict] | None = None, fail_on: set[str] | None = None) -> None:
        self._prose = prose if callable(prose) else itertools.cycle(list(prose or PROSE))
        self.structured = structured or {}
        self.fail_on = fail_on or set()
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            messages = [{"role": m.role, "content": m.text or ""} for m in request.messages]
            fmt = request.config.response_format
            name = (fmt or {}).get("name", "prose")
            if name in self.fail_on:
                raise RuntimeError(f"scripted failure in {name}")
            if fmt is not None:
                data = schema_example(fmt["schema"])
                data.update(self.structured.get(name, {}))
                text = json.dumps(data)
            else:
                text = self._prose(messages) if callable(self._prose) else next(self._prose)
        words = sum(len(m["content"].split()) for m in messages)
        return Response(id=None, model="scripted", message=Message.assistant(text), finish_reason="stop",
                        usage=Usage(input_tokens=words, output_tokens=len(text.split())))

    def stream(self, request: Request):
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


def scripted_lm(engine: ScriptedEngine | None = None) -> dspy.LM:
    return dspy.LM("scripted/test", engine=engine or ScriptedEngine(), cache=False, num_retries=0)
