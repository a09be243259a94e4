"""Credentials removed from text before it is written anywhere (manifest, rejected.jsonl, stderr).

An endpoint URL may carry a key (`http://user:KEY@host/v1`, `?api-key=KEY`, `?key=KEY`), and an error
message from the HTTP client may quote that URL or an Authorization header. Every boundary where the
project writes such text calls `redact` (or `redact_data` for a config dump), so there is one rule.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"

_PATTERNS = (
    # user:password@ (or a bare token@) in any scheme://
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.\-]*://)[^/?#@\s]+@", re.IGNORECASE), rf"\g<keep>{REDACTED}@"),
    # user:password@host without its scheme, as connection errors quote it
    (re.compile(r"(?<![\w/:@*])[^\s/?#@:'\"]+:[^\s/?#@'\"]+@(?=[\w\[])"), f"{REDACTED}@"),
    # query or fragment parameters that carry a credential
    (re.compile(r"(?P<keep>[?&#;](?:api[-_]?key|key|token|access[-_]?token|auth|password|secret|sig|signature|code)=)"
                r"[^&#\s'\"]+", re.IGNORECASE), rf"\g<keep>{REDACTED}"),
    # an Authorization header or bearer token quoted in an error
    (re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), rf"\g<keep>{REDACTED}"),
    # provider key shapes (OpenAI sk-..., Hugging Face hf_...) pasted anywhere
    (re.compile(r"\b(?:sk|hf|pk|rk)[-_][A-Za-z0-9_\-]{12,}"), REDACTED),
)


def redact(text: str) -> str:
    """`text` with every credential the patterns above recognise replaced by ***."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any) -> Any:
    """`redact` over every string in a JSON-like structure (dict keys are names, left alone)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value
