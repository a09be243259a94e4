"""What a review shows: every dialogue of an output folder, kept or rejected, with where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from synth_empathy.config import JudgeConfig
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.read import read_dialogues
from synth_empathy.corpus.store import KEPT_FILE, REJECTED_FILE, iter_jsonl
from synth_empathy.errors import UserError
from synth_empathy.schema import Dialogue, Rejection


@dataclass
class ReviewItem:
    """One dialogue to review: `stage` is "kept" or the stage that rejected it (rules, dedup, judge, ...)."""

    dialogue: Dialogue
    stage: str
    reasons: list[str] = field(default_factory=list)
    why: str = "random"  # why it sits where it does in the review order (see review.order)

    @property
    def id(self) -> str:
        return self.dialogue.id


def load_items(corpus_dir: Path) -> list[ReviewItem]:
    """Kept dialogues, then rejected records that hold a dialogue (a generation failure has none to read)."""
    corpus_dir = Path(corpus_dir)
    kept_path = corpus_dir / KEPT_FILE
    if not kept_path.is_file():
        raise UserError(f"{corpus_dir} holds no {KEPT_FILE}; give the output directory of a generate or filter run")
    items = [ReviewItem(d, "kept") for d in read_dialogues(kept_path)]
    rejected_path = corpus_dir / REJECTED_FILE
    if rejected_path.is_file():
        for i, record in enumerate(iter_jsonl(rejected_path), 1):
            try:
                rejection = Rejection.model_validate(record)
            except pydantic.ValidationError as exc:
                raise UserError(f"{rejected_path} record {i} is not a rejection: {exc.errors()[0]['msg']}") from exc
            if rejection.dialogue is not None:
                items.append(ReviewItem(rejection.dialogue, rejection.stage, list(rejection.reasons)))
    return items


def keep_thresholds(corpus_dir: Path) -> dict[str, float]:
    """The run's judge keep thresholds (from its manifest), else the defaults."""
    manifest = read_manifest(Path(corpus_dir))
    judge = (manifest.config.get("judge") or {}) if manifest else {}
    defaults = JudgeConfig()
    return {"sensibility": float(judge.get("min_sensibility", defaults.min_sensibility)),
            "rationality": float(judge.get("min_rationality", defaults.min_rationality))}
