"""Cheap rule checks, run before anything that costs a model call.

Each rule is a function Dialogue -> reason codes; its name is the switch in `RulesConfig.disabled`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from synth_empathy.config import RulesConfig
from synth_empathy.languages import LANGUAGES, language_share
from synth_empathy.programs.safety import follows_safe_pattern
from synth_empathy.schema import Dialogue, Rejection
from synth_empathy.text import ngrams, word_count, words

_AI_LEAK = re.compile(r"\b(as an ai|language model|i am an ai|i'm an ai|as a chatbot|openai)\b", re.IGNORECASE)
_SPEAKER_LABEL = re.compile(r"(^|\n)\s*(seeker|supporter|listener|user|assistant|you)\s*:", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[(name|insert|your name|placeholder)[^\]]*\]|\{\{.*?\}\}|<[a-z_]+>|lorem ipsum",
                          re.IGNORECASE)
# The seeker giving the supporter advice: imperative suggestions aimed at "you".
_SEEKER_ADVICE = re.compile(r"\b(you should|you need to|you could try|have you tried|my advice|i suggest you)\b",
                            re.IGNORECASE)


def turn_count(d: Dialogue, cfg: RulesConfig) -> list[str]:
    n = len(d.turns)
    if n < cfg.min_turns:
        return ["too_few_turns"]
    return ["too_many_turns"] if n > cfg.max_turns else []


def turn_length(d: Dialogue, cfg: RulesConfig) -> list[str]:
    reasons = []
    for t in d.turns:
        words = word_count(t.text)
        if words == 0:
            reasons.append("empty_turn")
        elif words < cfg.min_words_per_turn:
            reasons.append("turn_too_short")
        elif words > cfg.max_words_per_turn:
            reasons.append("turn_too_long")
    return reasons


def truncated(d: Dialogue, cfg: RulesConfig) -> list[str]:
    """A last turn that stops mid-sentence was cut by a token limit."""
    last = d.turns[-1].text.rstrip() if d.turns else ""
    return ["truncated_turn"] if last and last[-1].isalnum() and word_count(last) > 8 else []


def roles(d: Dialogue, cfg: RulesConfig) -> list[str]:
    return [] if {t.role for t in d.turns} == {"seeker", "supporter"} else ["missing_role"]


def repetition(d: Dialogue, cfg: RulesConfig) -> list[str]:
    """A turn whose word n-grams mostly repeat earlier turns is a loop, not a conversation."""
    n = cfg.repetition_ngram
    seen: set[tuple[str, ...]] = set()
    for t in d.turns:
        grams = set(ngrams(words(t.text), n))
        if len(grams) >= 3 and len(grams & seen) / len(grams) >= cfg.max_repeated_fraction:
            return ["repetition_loop"]
        seen |= grams
    return []


def leaked_roles(text: str, role: str) -> list[str]:
    """What in one turn's text breaks the role-play: an AI voice, speaker labels, a seeker giving advice."""
    reasons = []
    if _AI_LEAK.search(text):
        reasons.append("ai_disclosure")
    if _SPEAKER_LABEL.search(text):
        reasons.append("speaker_label_in_text")
    if role == "seeker" and _SEEKER_ADVICE.search(text):
        reasons.append("seeker_gives_advice")
    return reasons


def role_leakage(d: Dialogue, cfg: RulesConfig) -> list[str]:
    reasons: list[str] = []
    for t in d.turns:
        reasons += [r for r in leaked_roles(t.text, t.role) if r not in reasons]
    return reasons


def placeholders(d: Dialogue, cfg: RulesConfig) -> list[str]:
    return ["placeholder_text"] if any(_PLACEHOLDER.search(t.text) for t in d.turns) else []


def language(d: Dialogue, cfg: RulesConfig) -> list[str]:
    """The dialogue is in its seed's language: English by its function words (real prose is at least ~20% of
    them), other languages by theirs or by their script (synth_empathy.languages)."""
    text = " ".join(t.text for t in d.turns)
    lang = LANGUAGES.get(d.seed.language)
    if lang is None:
        return []  # a language we cannot recognise is not checked, rather than rejected
    share = language_share(words(text), text, lang)
    floor = cfg.min_script_share if lang.script is not None else cfg.min_english_share
    if share is None or share >= floor:
        return []
    return ["not_english"] if lang.code == "en" else ["wrong_language"]


def crisis_safety(d: Dialogue, cfg: RulesConfig) -> list[str]:
    unsafe = any(t.role == "supporter" and t.crisis and not follows_safe_pattern(t.text) for t in d.turns)
    return ["crisis_without_safe_pattern"] if unsafe else []


RULES: dict[str, Callable[[Dialogue, RulesConfig], list[str]]] = {
    rule.__name__: rule
    for rule in (turn_count, turn_length, truncated, roles, repetition, role_leakage, placeholders, language,
                 crisis_safety)
}


def rules_rejection(d: Dialogue, cfg: RulesConfig) -> Rejection | None:
    """The rules stage: a Rejection carrying the dialogue, or None when it passes (or rules are off)."""
    reasons = rule_violations(d, cfg) if cfg.enabled else []
    return Rejection(id=d.id, stage="rules", reasons=reasons, seed=d.seed, dialogue=d) if reasons else None


def rule_violations(d: Dialogue, cfg: RulesConfig) -> list[str]:
    """All reason codes the dialogue violates, deduplicated in rule order; empty means it passes."""
    reasons: list[str] = []
    for name, rule in RULES.items():
        if name in cfg.disabled:
            continue
        for reason in rule(d, cfg):
            if reason not in reasons:
                reasons.append(reason)
    return reasons
