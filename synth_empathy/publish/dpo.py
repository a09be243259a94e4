"""Preference pairs for DPO in TRL's conversational preference format: `prompt` (the messages up to a supporter
turn), `chosen` and `rejected` (one assistant message each), plus `source`:

- human_edit: a reviewer rewrote a supporter turn in `synth-empathy review` (DIR/labels.jsonl): the
  rewrite is chosen, the turn as generated rejected;
- critique_revision: a kept dialogue kept its drafts (`--keep-drafts`) and the supporter revised a draft
  after self-critique: the final turn is chosen, the critiqued draft rejected.

`margin` is how much better the critic scored the chosen reply than the rejected one on the EPITOME rubric
(er + ip + ex, each 0-2, so -6..6), known only where the critic scored both: a revision is scored when a later
critique round looked at it (dialogue.critique_rounds >= 2; a revision of the last round is not), a human edit
never. TRL's RewardTrainer reads a
`margin` column; DPOTrainer ignores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from synth_empathy.filters.calibration import latest_labels
from synth_empathy.publish.rows import prompt_messages
from synth_empathy.schema import Critique, Dialogue, Label


def rubric_total(critique: Critique) -> int:
    return critique.er + critique.ip + critique.ex


def _pair(d: Dialogue, index: int, chosen: str, rejected: str, source: str, system_prompt: str,
          reviewer: str | None = None, margin: float | None = None) -> dict[str, Any]:
    return {"id": f"{d.id}:{index}:{source}" + (f":{reviewer}" if reviewer else ""), "dialogue_id": d.id,
            "turn_index": index, "source": source, "reviewer": reviewer, "margin": margin,
            "prompt": prompt_messages(d.turns, index, system_prompt),
            "chosen": [{"role": "assistant", "content": chosen.strip()}],
            "rejected": [{"role": "assistant", "content": rejected.strip()}]}


def human_edit_pairs(dialogues: dict[str, Dialogue], labels: Iterable[Label], system_prompt: str
                     ) -> tuple[list[dict[str, Any]], int]:
    """One pair per edited turn of each reviewer's latest label, and how many edits were skipped because the
    dialogue is not in `dialogues` (filtered out) or its turn no longer reads as the label's original."""
    pairs, skipped = [], 0
    for label in latest_labels(labels):
        d = dialogues.get(label.dialogue_id)
        for edit in label.edits:
            turn = d.turns[edit.index] if d and edit.index < len(d.turns) else None
            if turn is None or turn.role != "supporter" or turn.text != edit.original:
                skipped += 1
                continue
            pairs.append(_pair(d, edit.index, edit.text, edit.original, "human_edit", system_prompt, label.reviewer))
    return pairs, skipped


def critique_revision_pairs(dialogues: Iterable[Dialogue], system_prompt: str) -> list[dict[str, Any]]:
    """One pair per distinct critiqued draft of a revised supporter turn that differs from the final text, with
    the margin when a critique round scored the final text too."""
    pairs = []
    for d in dialogues:
        for i, t in enumerate(d.turns):
            if t.role != "supporter" or not t.revised:
                continue
            final = next((rubric_total(draft.critique) for draft in reversed(t.drafts)
                          if draft.text.strip() == t.text.strip()), None)
            seen = {t.text.strip()}
            for draft in t.drafts:
                if draft.text.strip() in seen:
                    continue
                seen.add(draft.text.strip())
                margin = None if final is None else float(final - rubric_total(draft.critique))
                pairs.append(_pair(d, i, t.text, draft.text, "critique_revision", system_prompt, margin=margin))
    return pairs


def preference_pairs(kept: Sequence[Dialogue], rejected: Sequence[Dialogue], labels: Iterable[Label],
                     system_prompt: str) -> tuple[list[dict[str, Any]], int]:
    """Human edits on any labelled dialogue (kept or rejected: the reviewer wrote the chosen text), then
    critique revisions of kept dialogues; and the number of edits skipped."""
    by_id = {d.id: d for d in [*rejected, *kept]}
    edits, skipped = human_edit_pairs(by_id, labels, system_prompt)
    return edits + critique_revision_pairs(kept, system_prompt), skipped
