"""The training rows of a dialogue, shared by every export and by the Python API (`Generator`): one chat form
(system message, user = seeker, assistant = supporter, consecutive turns of one speaker joined, never ending on
a seeker turn) and the rows built from it.

- `to_messages`: the whole conversation, TRL's conversational language-modeling row (`messages`);
- `prompt_completion_rows`: one row per supporter reply, TRL's conversational prompt-completion row
  (`prompt` = system + history, `completion` = the reply), so a trainer's loss covers supporter text only;
- `hf_row`: `messages` plus flat seed, score and model columns and the whole record (the hf export, the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synth_empathy.schema import Dialogue, Turn

DEFAULT_SYSTEM_PROMPT = (
    "You are a warm, attentive supporter in an emotional-support conversation. Listen closely, reflect what the "
    "person feels, ask gentle open questions, and offer suggestions or information only when they help. Keep "
    "replies short and specific to what they said. You are not a therapist and give no clinical advice; if "
    "someone may be in danger, encourage them to contact local emergency services or a crisis line."
)
TARGETS = ("all", "last")

_ROLE = {"seeker": "user", "supporter": "assistant"}


def joined_turns(turns: Sequence[Turn]) -> list[tuple[str, str, int]]:
    """(user|assistant, text, index of its last turn in `turns`): consecutive turns of one speaker joined, as a
    chat template expects roles to alternate."""
    out: list[tuple[str, str, int]] = []
    for i, t in enumerate(turns):
        role, text = _ROLE[t.role], t.text.strip()
        if out and out[-1][0] == role:
            out[-1] = (role, f"{out[-1][1]}\n\n{text}", i)
        else:
            out.append((role, text, i))
    return out


def _system(system_prompt: str | None) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt}] if system_prompt is not None else []


def chat_turns(d: Dialogue) -> list[tuple[str, str]]:
    """(user|assistant, text) pairs of the dialogue, a closing seeker turn dropped (nothing answers it, so it
    teaches nothing)."""
    out = [(role, text) for role, text, _ in joined_turns(d.turns)]
    while out and out[-1][0] == "user":
        out.pop()
    return out


def to_messages(d: Dialogue, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The one chat-template form ({role, content}) of every export and of the Python API; a system message
    first unless `system_prompt` is None."""
    return _system(system_prompt) + [{"role": r, "content": c} for r, c in chat_turns(d)]


def prompt_messages(turns: Sequence[Turn], index: int, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
                    ) -> list[dict[str, str]]:
    """The system message and the turns before `index`, joined as in `to_messages`: the prompt a supporter turn
    at `index` answers (it ends on the seeker's message)."""
    return _system(system_prompt) + [{"role": r, "content": c} for r, c, _ in joined_turns(turns[:index])]


def prompt_completion_rows(d: Dialogue, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
                           targets: str = "all") -> list[dict[str, Any]]:
    """One TRL prompt-completion row per supporter reply ("all"), or for the final one only ("last").

    `prompt` is the system message and the conversation up to the reply; `completion` the reply as one assistant
    message. A reply with nothing before it (no seeker message, no system message) is skipped: there is no prompt.
    Concatenating the last row's prompt and completion gives `to_messages(d)`.

    Example:
        >>> rows = prompt_completion_rows(dialogue)  # doctest: +SKIP
        >>> rows[0]["prompt"][-1]["role"], rows[0]["completion"][0]["role"]  # doctest: +SKIP
        ('user', 'assistant')
    """
    system = _system(system_prompt)
    joined = joined_turns(d.turns)
    rows = []
    for n, (role, text, turn_index) in enumerate(joined):
        prompt = system + [{"role": r, "content": c} for r, c, _ in joined[:n]]
        if role != "assistant" or not prompt:
            continue
        rows.append({"id": f"{d.id}:{turn_index}", "dialogue_id": d.id, "turn_index": turn_index,
                     "prompt": prompt, "completion": [{"role": "assistant", "content": text}]})
    return rows[-1:] if targets == "last" else rows


def family(d: Dialogue) -> str:
    """A seed family: one situation, whatever the persona; its dialogues must never straddle splits."""
    return d.seed.situation.id


def hf_row(d: Dialogue, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> dict[str, Any]:
    """Flat, typed columns for filtering on the Hub, plus `record`, the whole dialogue as JSON (lossless)."""
    s = d.scores
    return {
        "id": d.id,
        "family": family(d),
        "emotion": d.seed.emotion,
        "problem_type": d.seed.problem_type,
        "situation": d.seed.situation.text,
        "domain": d.seed.situation.domain,
        "persona_id": d.seed.persona.id,
        "intensity": d.seed.intensity,
        "ending": d.ending,
        "crisis": d.crisis,
        "messages": to_messages(d, system_prompt),
        "turns": [{"role": t.role, "text": t.text, "strategy": t.strategy, "intensity": t.intensity}
                  for t in d.turns],
        "sensibility": s.sensibility if s else None,
        "rationality": s.rationality if s else None,
        "er": s.er if s else None,
        "ip": s.ip if s else None,
        "ex": s.ex if s else None,
        "generator_model": d.provenance.generator_model,
        "judge_model": d.provenance.judge_model,
        "created": d.provenance.created,
        "record": d.model_dump_json(exclude_none=True),
    }


def hf_features():
    """The `datasets.Features` of `hf_row`, so a column that is None in every row still has its type."""
    from datasets import Features, Value

    text, score = Value("string"), Value("float64")
    return Features({
        "id": text, "family": text, "emotion": text, "problem_type": text, "situation": text, "domain": text,
        "persona_id": text, "intensity": Value("int32"), "ending": text, "crisis": Value("bool"),
        "messages": [{"role": text, "content": text}],
        "turns": [{"role": text, "text": text, "strategy": text, "intensity": Value("int32")}],
        "sensibility": score, "rationality": score, "er": score, "ip": score, "ex": score,
        "generator_model": text, "judge_model": text, "created": text, "record": text,
    })


def prompt_completion_features():
    """The `datasets.Features` of `prompt_completion_rows`."""
    from datasets import Features, Value

    text, messages = Value("string"), [{"role": Value("string"), "content": Value("string")}]
    return Features({"id": text, "dialogue_id": text, "turn_index": Value("int32"), "prompt": messages,
                     "completion": messages})
