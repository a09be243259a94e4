"""Cheap rule checks, run before anything that costs a model call. Each returns reason codes."""

from __future__ import annotations

import re
from collections.abc import Callable

from synth_empathy.config import RulesConfig
from synth_empathy.programs.safety import follows_safe_pattern
from synth_empathy.schema import Dialogue

_AI_LEAK = re.compile(r"\b(as an ai|language model|i am an ai|i'm an ai|as a chatbot|openai)\b", re.IGNORECASE)
_SPEAKER_LABEL = re.compile(r"(^|\n)\s*(seeker|supporter|listener|user|assistant|you)\s*:", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[(name|insert|your name|placeholder)[^\]]*\]|\{\{.*?\}\}|<[a-z_]+>|lorem ipsum",
                          re.IGNORECASE)


def _turn_lengths(d: Dialogue, cfg: RulesConfig) -> list[str]:
    reasons = []
    for t in d.turns:
        words = len(t.text.split())
        if words == 0:
            reasons.append("empty_turn")
        elif words < cfg.min_words_per_turn:
            reasons.append("turn_too_short")
        elif words > cfg.max_words_per_turn:
            reasons.append("turn_too_long")
    return reasons


def _structure(d: Dialogue, cfg: RulesConfig) -> list[str]:
    roles = {t.role for t in d.turns}
    return [] if roles == {"seeker", "supporter"} else ["missing_role"]


def _role_leakage(d: Dialogue, cfg: RulesConfig) -> list[str]:
    reasons = []
    if any(_AI_LEAK.search(t.text) for t in d.turns):
        reasons.append("ai_disclosure")
    if any(_SPEAKER_LABEL.search(t.text) for t in d.turns):
        reasons.append("speaker_label_in_text")
    return reasons


def _placeholders(d: Dialogue, cfg: RulesConfig) -> list[str]:
    return ["placeholder_text"] if any(_PLACEHOLDER.search(t.text) for t in d.turns) else []


def _crisis_safety(d: Dialogue, cfg: RulesConfig) -> list[str]:
    unsafe = any(t.role == "supporter" and t.crisis and not follows_safe_pattern(t.text) for t in d.turns)
    return ["crisis_without_safe_pattern"] if unsafe else []


RULES: list[Callable[[Dialogue, RulesConfig], list[str]]] = [
    _turn_lengths, _structure, _role_leakage, _placeholders, _crisis_safety,
]


def rule_violations(d: Dialogue, cfg: RulesConfig) -> list[str]:
    """All reason codes the dialogue violates, deduplicated in rule order; empty means it passes."""
    reasons: list[str] = []
    for rule in RULES:
        for reason in rule(d, cfg):
            if reason not in reasons:
                reasons.append(reason)
    return reasons
