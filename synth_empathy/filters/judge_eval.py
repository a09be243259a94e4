"""How well the judge agrees with human labels (EPITOME CSVs, or a generic JSONL)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.errors import UserError
from synth_empathy.filters.agreement import accuracy, cohen_kappa, spearman
from synth_empathy.lm import PlainAdapter, build_lm
from synth_empathy.programs import load_programs
from synth_empathy.programs.epitome import MECHANISMS, levels
from synth_empathy.programs.judge import Judge
from synth_empathy.programs.transcript import turn_line, with_reply
from synth_empathy.userfiles import iter_lines, reading

_FILE_HINTS = {"emotional": "er", "reaction": "er", "interpretation": "ip", "exploration": "ex"}
EPITOME_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level")


@dataclass
class LabelledPair:
    context: str
    response: str
    label: int
    mechanism: str


def _mechanism_from_name(path: Path) -> str | None:
    name = path.name.lower()
    return next((m for hint, m in _FILE_HINTS.items() if hint in name), None)


def read_labelled(path: Path, fmt: str, mechanism: str | None = None) -> list[LabelledPair]:
    """EPITOME CSV (one file per mechanism, named for it or given by `mechanism`) or JSONL context/response/label."""
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    if fmt == "epitome":
        mech = mechanism or _mechanism_from_name(path)
        if mech not in MECHANISMS:
            raise UserError(f"{path}: cannot tell the EPITOME mechanism from the file name; pass --mechanism er|ip|ex")
        with reading(path), open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            try:
                missing = [c for c in EPITOME_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise UserError(f"{path} is not an EPITOME file: missing column(s) {', '.join(missing)}")
                return [_pair(path, i, row["seeker_post"], row["response_post"], row["level"], mech)
                        for i, row in enumerate(reader, 2)]
            except csv.Error as exc:  # e.g. a field over the csv module's limit (131,072 characters)
                raise UserError(f"{path} line {reader.line_num}: not a readable CSV row ({exc})") from exc
    if fmt == "jsonl":
        pairs = []
        with reading(path):
            for i, line in iter_lines(path):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    mech = rec.get("mechanism", mechanism)
                    pairs.append(_pair(path, i, rec["context"], rec["response"], rec["label"], mech))
                except (ValueError, KeyError, AttributeError, TypeError) as exc:
                    raise UserError(f"{path} line {i}: needs context, response and label ({exc})") from exc
        return pairs
    raise UserError(f"--format must be 'epitome', 'jsonl' or 'labels', not '{fmt}'")


def _pair(path: Path, where: int, context: str, response: str, label, mechanism: str | None) -> LabelledPair:
    if mechanism not in MECHANISMS:
        raise UserError(f"{path} line {where}: mechanism must be one of er, ip, ex (give it with --mechanism)")
    try:
        level = int(label)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path} line {where}: label {label!r} is not a level 0-2") from exc
    if level not in (0, 1, 2):
        raise UserError(f"{path} line {where}: label {level} is not a level 0-2")
    return LabelledPair(context=context, response=response, label=level, mechanism=mechanism)


def evaluate(pairs: list[LabelledPair], judge: Judge,
             on_pair: Callable[[int], None] | None = None) -> dict[str, dict[str, float | int | None]]:
    """Judge each pair as a two-turn conversation; agreement per mechanism."""
    gold: dict[str, list[int]] = {}
    pred: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        out = judge(conversation=with_reply(turn_line("seeker", pair.context), pair.response))
        gold.setdefault(pair.mechanism, []).append(pair.label)
        pred.setdefault(pair.mechanism, []).append(levels(out)[pair.mechanism])
        if on_pair:
            on_pair(i)
    return {
        mech: {"n": len(gold[mech]), "accuracy": round(accuracy(gold[mech], pred[mech]), 4),
               "kappa": round(cohen_kappa(gold[mech], pred[mech]), 4),
               "spearman": None if (rho := spearman(gold[mech], pred[mech])) is None else round(rho, 4)}
        for mech in gold
    }


def evaluate_judge(config: RunConfig, pairs: list[LabelledPair],
                   on_pair: Callable[[int], None] | None = None) -> dict[str, dict[str, float | int | None]]:
    """`evaluate` with the config's judge: its model and its program (`programs_dir`)."""
    judge = load_programs(programs_dir=config.programs_dir).judge
    with dspy.context(lm=build_lm(config.judge_model()), adapter=PlainAdapter()):
        return evaluate(pairs, judge, on_pair)
