"""The OpenAI Batch API: chat-completion requests as one uploaded JSONL file, answered within 24 h at a discount.

`run_batch` uploads the requests (`POST /v1/files`, purpose "batch"), creates the batch (`POST /v1/batches`),
polls it (`GET /v1/batches/{id}`) and downloads its output file (`GET /v1/files/{id}/content`). The batch id
and input file id are written to a state file before the first poll, so a process killed while it waits
resumes the same batch on the next run instead of paying for a second one; the state also holds a digest of
the requests, and a state for other requests is bad input rather than a silent mix-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openai

from synth_empathy.config import ModelConfig, Price
from synth_empathy.errors import RunError, UserError

BATCH_FILE = "batch.json"  # the state of a batch in an output folder
FINAL = ("completed", "failed", "expired", "cancelled")


def batch_price(price: Price) -> Price:
    """`price` with its `batch_discount` taken off every rate."""
    keep = 1 - price.batch_discount
    return price.model_copy(update={"input": price.input * keep, "output": price.output * keep,
                                    "cached_input": None if price.cached_input is None else price.cached_input * keep})


@dataclass
class Answer:
    """One request's outcome: the chat.completion body, or why there is none."""

    body: dict | None = None
    error: str | None = None

    @property
    def content(self) -> str:
        return self.body["choices"][0]["message"]["content"] or ""


def _client(config: ModelConfig) -> openai.OpenAI:
    if config.backend != "openai":
        raise UserError(f"--batch needs --backend openai (the OpenAI Batch API), not {config.backend}")
    key = os.environ.get(config.api_key_env)
    if not key:
        raise UserError(f"--batch needs an API key: set the environment variable {config.api_key_env}")
    return openai.OpenAI(base_url=config.api_base, api_key=key, timeout=config.timeout_s,
                         max_retries=config.retries)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def run_batch(requests: dict[str, dict], config: ModelConfig, state_path: Path, *, poll_s: float = 30.0,
              on_status: Callable[[str, dict], None] | None = None) -> dict[str, Answer]:
    """Every request answered through one batch: {custom_id: Answer}.

    Args:
        requests: custom_id -> chat-completion body (model, messages, ...).
        config: the endpoint (backend openai, api_base, key variable, timeout, retries).
        state_path: where the batch id lives while it runs (and after, as a record).
        poll_s: seconds between polls.
        on_status: called with the status and request counts after every poll.

    Raises RunError, once, when the batch fails, expires or is cancelled (the state is then removed, so a rerun
    submits a new batch); UserError when `state_path` holds a batch of other requests.
    """
    lines = "".join(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body},
                               sort_keys=True) + "\n" for cid, body in requests.items()).encode()
    digest = _digest(lines)
    client = _client(config)
    try:
        state = _resume_or_submit(client, lines, digest, state_path)
        batch = _wait(client, state["batch_id"], poll_s, on_status)
        if batch.status != "completed":
            reasons = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
            state_path.unlink(missing_ok=True)
            raise RunError(f"batch {batch.id} {batch.status}" + (f": {reasons}" if reasons else "") +
                           "; nothing was scored. Run the command again to submit a new batch")
        answers = _answers(client, batch.output_file_id) | _answers(client, batch.error_file_id)
    except openai.APIError as exc:
        raise RunError(f"the Batch API at {config.api_base or 'api.openai.com'} failed: {exc}") from exc
    _write_state(state_path, {**state, "status": "completed", "output_file_id": batch.output_file_id})
    return {cid: answers.get(cid, Answer(error="the batch returned no answer for this request")) for cid in requests}


def _resume_or_submit(client: openai.OpenAI, lines: bytes, digest: str, state_path: Path) -> dict:
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("requests_sha256") != digest:
            raise UserError(f"{state_path} holds batch {state.get('batch_id')} of other requests (another input or "
                            "config); use another --out, or delete that file to submit a new batch")
        return state
    uploaded = client.files.create(file=("requests.jsonl", lines, "application/jsonl"), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    state = {"batch_id": batch.id, "input_file_id": uploaded.id, "requests_sha256": digest,
             "requests": lines.count(b"\n"), "submitted": int(time.time()), "status": batch.status}
    state_path.parent.mkdir(parents=True, exist_ok=True)
    _write_state(state_path, state)
    return state


def _wait(client: openai.OpenAI, batch_id: str, poll_s: float, on_status) -> openai.types.Batch:
    while True:
        batch = client.batches.retrieve(batch_id)
        if on_status:
            counts = batch.request_counts.model_dump() if batch.request_counts else {}
            on_status(batch.status, counts)
        if batch.status in FINAL:
            return batch
        time.sleep(poll_s)


def _answers(client: openai.OpenAI, file_id: str | None) -> dict[str, Answer]:
    if not file_id:
        return {}
    out = {}
    for line in client.files.content(file_id).text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        response, error = row.get("response") or {}, row.get("error")
        if error or response.get("status_code") != 200:
            detail = (error or {}).get("message") or json.dumps(response.get("body"))[:300]
            out[row["custom_id"]] = Answer(error=f"HTTP {response.get('status_code')}: {detail}")
        else:
            out[row["custom_id"]] = Answer(body=response["body"])
    return out
