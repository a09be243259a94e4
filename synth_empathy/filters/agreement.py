"""Agreement between judge labels and human labels: accuracy, Cohen's kappa (plain and quadratic-weighted),
Spearman's rho."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def cohen_kappa(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Chance-corrected agreement: (p_o - p_e) / (1 - p_e); 1.0 when both raters are constant and agree."""
    n = len(gold)
    if n == 0:
        return 0.0
    observed = accuracy(gold, pred)
    g, p = Counter(gold), Counter(pred)
    expected = sum(g[k] * p[k] for k in set(g) | set(p)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def quadratic_kappa(gold: Sequence[float], pred: Sequence[float]) -> float:
    """Cohen's kappa with quadratic weights, for ordinal scales (0-10 scores, 0-2 levels): a miss by two costs
    four times a miss by one. 1 - sum (g_i - p_i)^2 / E[(g - p)^2] with g and p drawn independently from their
    marginals, which is the usual (i - j)^2 weight matrix form (its normalisation cancels); 1.0 when both
    raters are the same constant."""
    n = len(gold)
    if n == 0:
        return 0.0
    observed = sum((g - p) ** 2 for g, p in zip(gold, pred, strict=True))
    # sum over all (i, j) of (g_i - p_j)^2 / n, expanded so it costs O(n), not O(n^2)
    sum_g, sum_p = sum(gold), sum(pred)
    expected = sum(g * g for g in gold) + sum(p * p for p in pred) - 2 * sum_g * sum_p / n
    if expected <= 1e-12:
        return 1.0
    return 1 - observed / expected


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks, so ties (common with 0-2 levels) share their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(gold: Sequence[float], pred: Sequence[float]) -> float | None:
    """Pearson correlation of the ranks; None when either side is constant (undefined)."""
    rg, rp = _ranks(gold), _ranks(pred)
    n = len(rg)
    if n < 2:
        return None
    mg, mp = sum(rg) / n, sum(rp) / n
    cov = sum((a - mg) * (b - mp) for a, b in zip(rg, rp, strict=True))
    var_g = sum((a - mg) ** 2 for a in rg)
    var_p = sum((b - mp) ** 2 for b in rp)
    return None if var_g == 0 or var_p == 0 else cov / (var_g * var_p) ** 0.5
