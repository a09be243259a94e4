"""How far the judge agrees with people: judge scores vs the human labels of DIR/labels.jsonl.

Pure functions over labels and judge scores; `synth-empathy calibrate` reads the files and writes the result
into manifest.json (`human_agreement`), where `stats`, the report and the data card find it.

Each reviewer's latest label of a dialogue is one observation. Ordinal ratings (0-10 scores, 0-2 EPITOME
levels) get Cohen's kappa with quadratic weights and Spearman's rho; the judge's averaged scores are rounded
to the nearest whole level for kappa and exact accuracy, and ranked as they are for rho. Failure flags and
keep/reject are binary: plain kappa and accuracy. Every figure carries N and a seeded percentile bootstrap
95% interval over the observations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from synth_empathy.config import JudgeConfig
from synth_empathy.filters.agreement import accuracy, cohen_kappa, quadratic_kappa, spearman
from synth_empathy.filters.judge import judge_reasons
from synth_empathy.schema import FAILURE_MECHANISMS, Dialogue, Label, Scores

ORDINAL = ("sensibility", "rationality", "er", "ip", "ex")
RESAMPLES = 1000
GRID = tuple(x / 2 for x in range(21))  # candidate thresholds 0, 0.5, ..., 10


def level(value: float) -> int:
    """The nearest whole level, halves up (7.5 -> 8), as the score histograms bin them."""
    return math.floor(value + 0.5)


def latest_labels(labels: Iterable[Label]) -> list[Label]:
    """The last label of each (dialogue, reviewer): a relabel replaces the reviewer's earlier verdict. In the
    order of those last words."""
    latest: dict[tuple[str, str], Label] = {}
    for label in labels:
        key = (label.dialogue_id, label.reviewer)
        latest.pop(key, None)  # re-inserted, so the order is that of each verdict's last word
        latest[key] = label
    return list(latest.values())


def judge_scores(dialogues: Iterable[Dialogue], rejections: Iterable[Mapping] = ()) -> dict[str, Scores]:
    """Judge scores by dialogue id: kept dialogues and rejected ones the judge scored."""
    out = {d.id: d.scores for d in dialogues if d.scores is not None}
    for r in rejections:
        scores = (r.get("dialogue") or {}).get("scores")
        if isinstance(scores, dict):
            out[str(r["id"])] = Scores.model_validate(scores)
    return out


def judge_keeps(scores: Scores, min_sensibility: float, min_rationality: float) -> bool:
    return not judge_reasons(scores, JudgeConfig(min_sensibility=min_sensibility, min_rationality=min_rationality))


# ------------------------------------------------------------------ figures with intervals


def _bootstrap(metric: Callable[[list, list], float | None], gold: Sequence, pred: Sequence, resamples: int,
               seed: int) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of `metric` over resamples of the pairs (None below 2 pairs)."""
    n = len(gold)
    if n < 2 or resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for idx in rng.integers(0, n, size=(resamples, n)):
        v = metric([gold[i] for i in idx], [pred[i] for i in idx])
        if v is not None:
            values.append(v)
    if not values:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def agreement(gold: Sequence[float], pred: Sequence[float], ordinal: bool, resamples: int = RESAMPLES,
              seed: int = 0) -> dict[str, Any]:
    """N, kappa (quadratic-weighted when ordinal), Spearman (ordinal only), exact accuracy, with intervals."""
    gold_levels, pred_levels = [level(g) for g in gold], [level(p) for p in pred]
    kappa_fn = quadratic_kappa if ordinal else cohen_kappa
    out: dict[str, Any] = {"n": len(gold), "weights": "quadratic" if ordinal else "none"}
    if not gold:
        return out | {"kappa": None, "accuracy": None, "spearman": None}
    out["kappa"] = _round(kappa_fn(gold_levels, pred_levels))
    out["kappa_ci"] = _bootstrap(kappa_fn, gold_levels, pred_levels, resamples, seed)
    out["accuracy"] = _round(accuracy(gold_levels, pred_levels))
    out["accuracy_ci"] = _bootstrap(accuracy, gold_levels, pred_levels, resamples, seed)
    if ordinal:
        out["spearman"] = _round(spearman(gold, pred))
        out["spearman_ci"] = _bootstrap(spearman, list(gold), list(pred), resamples, seed)
    return out


def _human(label: Label, dim: str) -> float | None:
    if dim in ORDINAL:
        return getattr(label.ratings, dim)
    if dim == "keep":
        return float(label.keep)
    flags = label.ratings.failures
    return float(flags[dim]) if dim in flags else None


def _judge(scores: Scores, dim: str, thresholds: Mapping[str, float]) -> float | None:
    if dim in ORDINAL:
        return getattr(scores, dim)
    if dim == "keep":
        return float(judge_keeps(scores, thresholds["sensibility"], thresholds["rationality"]))
    return float(scores.failures[dim]) if dim in scores.failures else None


def _paired(rows: Iterable[tuple[float | None, float | None]]) -> tuple[list[float], list[float]]:
    kept = [(a, b) for a, b in rows if a is not None and b is not None]
    return [a for a, _ in kept], [b for _, b in kept]


def confusion(human_keep: Sequence[float], judge_keep: Sequence[float]) -> dict[str, int]:
    pairs = list(zip(human_keep, judge_keep, strict=True))
    return {"both_keep": sum(h == 1 and j == 1 for h, j in pairs),
            "human_keep_judge_reject": sum(h == 1 and j == 0 for h, j in pairs),
            "human_reject_judge_keep": sum(h == 0 and j == 1 for h, j in pairs),
            "both_reject": sum(h == 0 and j == 0 for h, j in pairs)}


def propose_thresholds(rows: Sequence[tuple[Scores, bool]], current: Mapping[str, float]) -> dict[str, Any] | None:
    """The (min_sensibility, min_rationality) on a 0.5 grid whose keep rule best matches the human keep
    decisions: highest accuracy, then highest kappa, then the smallest move from the current thresholds."""
    if not rows:
        return None
    human = [int(keep) for _, keep in rows]

    def fit(ts: float, tr: float) -> tuple[float, float]:
        judged = [int(judge_keeps(s, ts, tr)) for s, _ in rows]
        return accuracy(human, judged), cohen_kappa(human, judged)

    best = max(((ts, tr, *fit(ts, tr)) for ts in GRID for tr in GRID),
               key=lambda c: (round(c[2], 9), round(c[3], 9),
                              -abs(c[0] - current["sensibility"]) - abs(c[1] - current["rationality"])))
    now_acc, now_kappa = fit(current["sensibility"], current["rationality"])
    return {"min_sensibility": best[0], "min_rationality": best[1], "n": len(rows),
            "accuracy": _round(best[2]), "kappa": _round(best[3]),
            "current": {"min_sensibility": current["sensibility"], "min_rationality": current["rationality"],
                        "accuracy": _round(now_acc), "kappa": _round(now_kappa)}}


# ------------------------------------------------------------------ the whole picture


def calibrate(labels: Iterable[Label], scores_by_id: Mapping[str, Scores], thresholds: Mapping[str, float],
              resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Judge vs people and people vs people, as the JSON-ready `human_agreement` of the manifest.

    Args:
        labels: every label of DIR/labels.jsonl (each reviewer's last label of a dialogue counts).
        scores_by_id: the judge's scores by dialogue id (`judge_scores`); unscored dialogues are left out of
            the judge comparison but still count for inter-reviewer agreement.
        thresholds: the run's keep thresholds, {"sensibility": ..., "rationality": ...}.

    Example:
        >>> calibrate(read_labels(d / "labels.jsonl"), judge_scores(corpus.dialogues), {"sensibility": 6,
        ...           "rationality": 6})["keep"]["accuracy"]  # doctest: +SKIP
    """
    latest = latest_labels(labels)
    judged = [(label, scores_by_id[label.dialogue_id]) for label in latest if label.dialogue_id in scores_by_id]
    dims = (*ORDINAL, *FAILURE_MECHANISMS)

    def compare(pairs: Sequence[tuple[Label, Any]], other: Callable[[Any, str], float | None]) -> dict[str, Any]:
        out = {}
        for dim in dims:
            gold, pred = _paired((_human(a, dim), other(b, dim)) for a, b in pairs)
            out[dim] = agreement(gold, pred, ordinal=dim in ORDINAL, resamples=resamples, seed=seed)
        gold, pred = _paired((_human(a, "keep"), other(b, "keep")) for a, b in pairs)
        out["keep"] = agreement(gold, pred, ordinal=False, resamples=resamples, seed=seed) | {
            "confusion": confusion(gold, pred)}
        return out

    by_dialogue: dict[str, list[Label]] = {}
    for label in latest:
        by_dialogue.setdefault(label.dialogue_id, []).append(label)
    reviewer_pairs = [(a, b) for group in by_dialogue.values()
                      for a, b in itertools.combinations(sorted(group, key=lambda x: x.reviewer), 2)]
    judge_side = compare(judged, lambda s, dim: _judge(s, dim, thresholds))
    return {
        "labels": len(latest),
        "dialogues": len(by_dialogue),
        "reviewers": sorted({label.reviewer for label in latest}),
        "judged_labels": len(judged),
        "thresholds": {"min_sensibility": thresholds["sensibility"], "min_rationality": thresholds["rationality"]},
        "judge": {dim: v for dim, v in judge_side.items() if dim != "keep"},
        "keep": judge_side["keep"],
        "inter_reviewer": ({"pairs": len(reviewer_pairs)} | compare(reviewer_pairs, _human)) if reviewer_pairs
        else {"pairs": 0},
        "proposed_thresholds": propose_thresholds([(s, label.keep) for label, s in judged], thresholds),
        "bootstrap": {"resamples": resamples, "seed": seed, "interval": 0.95},
        "computed": datetime.now(UTC).isoformat(timespec="seconds"),
    }
