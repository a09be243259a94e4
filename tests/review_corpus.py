"""A small output folder for the review, calibration and DPO tests: make_corpus plus drafts and judge spreads."""

from __future__ import annotations

from pathlib import Path

from test_exports import make_corpus

from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import KEPT_FILE
from synth_empathy.schema import Critique, Dialogue, Draft, Label, Ratings, TurnEdit


def with_drafts(d: Dialogue) -> Dialogue:
    """Every supporter turn revised once: the draft that was critiqued, then the final text."""
    turns = []
    for t in d.turns:
        if t.role == "supporter":
            critique = Critique(er=0, ip=1, ex=0, failures=["linguistic_distancing"], feedback="Speak to them.")
            t = t.model_copy(update={"revised": True, "drafts": [Draft(text=f"Draft: {t.text}", critique=critique)]})
        turns.append(t)
    return d.model_copy(update={"turns": turns})


def make_review_corpus(out: Path, n: int = 12, rejected: int = 8) -> Path:
    """make_corpus, with drafts on the first two kept dialogues and three judge samples on the third."""
    make_corpus(out, n=n, rejected=rejected)
    dialogues = read_dialogues(out / KEPT_FILE)
    dialogues[0], dialogues[1] = with_drafts(dialogues[0]), with_drafts(dialogues[1])
    spread = dialogues[2].scores.model_copy(update={"samples": 3, "spread": {"sensibility": 5.0, "rationality": 1.0}})
    dialogues[2] = dialogues[2].model_copy(update={"scores": spread})
    lines = "".join(d.model_dump_json(exclude_none=True) + "\n" for d in dialogues)
    (out / KEPT_FILE).write_text(lines, encoding="utf-8")
    return out


def label(dialogue_id: str, reviewer: str = "ana", keep: bool = True, edits: list[TurnEdit] | None = None,
          time: str = "2026-01-01T00:00:00+00:00", **ratings) -> Label:
    return Label(dialogue_id=dialogue_id, reviewer=reviewer, time=time, ratings=Ratings(**ratings), keep=keep,
                 edits=edits or [])
