"""Coverage-aware seed planning: every plausible (emotion x problem type) cell before any repeats."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Sequence

from synth_empathy.config import RunConfig
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import Catalog
from synth_empathy.graphs.graph import plausible
from synth_empathy.schema import Persona, Seed, Situation

Cell = tuple[str, str]


def seed_id(index: int, persona: Persona, situation: Situation, emotion: str, intensity: int) -> str:
    blob = f"{index}|{persona.id}|{situation.id}|{emotion}|{intensity}".encode()
    return "d" + hashlib.sha256(blob).hexdigest()[:15]


def plausible_cells(catalog: Catalog) -> dict[Cell, list[Situation]]:
    """Cells that have at least one situation some persona can plausibly be in."""
    cells: dict[Cell, list[Situation]] = {}
    for s in catalog.situations:
        if not any(plausible(p, s) for p in catalog.personas):
            continue
        for e in s.emotions:
            cells.setdefault((e, s.problem_type), []).append(s)
    return cells


def _weighted_round(cells: dict[Cell, list[Situation]], emotion_weights: dict[str, float],
                    problem_weights: dict[str, float]) -> list[Cell]:
    """One round of the plan: each cell as often as its weight (rounded; at least once unless 0)."""
    out: list[Cell] = []
    for cell in sorted(cells):
        weight = emotion_weights.get(cell[0], 1.0) * problem_weights.get(cell[1], 1.0)
        if weight > 0:
            out += [cell] * max(1, round(weight))
    return out


def plan_seeds(catalog: Catalog, n: int, seed: int = 0, emotion_weights: dict[str, float] | None = None,
               problem_type_weights: dict[str, float] | None = None) -> list[Seed]:
    """Deterministic for (catalog, n, seed, weights). Cells are visited round-robin in a shuffled order, so
    every cell is used once before any repeats (weights > 1 repeat a cell within a round, 0 leaves it out);
    inside a cell the least-used situation wins, and the persona is the least-used plausible one, which
    spreads personas evenly."""
    rng = random.Random(seed)
    cells = plausible_cells(catalog)
    round_cells = _weighted_round(cells, emotion_weights or {}, problem_type_weights or {})
    if not round_cells:
        raise UserError("the sampler weights leave no (emotion x problem type) cell to sample")
    order: list[Cell] = []
    situation_uses: Counter[str] = Counter()
    persona_uses: Counter[str] = Counter()
    seeds: list[Seed] = []
    for index in range(n):
        if not order:
            order = list(round_cells)
            rng.shuffle(order)
        emotion, problem = order.pop()
        options = cells[(emotion, problem)]
        least = min(situation_uses[s.id] for s in options)
        situation = rng.choice([s for s in options if situation_uses[s.id] == least])
        personas = [p for p in catalog.personas if plausible(p, situation)]
        fewest = min(persona_uses[p.id] for p in personas)
        persona = rng.choice([p for p in personas if persona_uses[p.id] == fewest])
        situation_uses[situation.id] += 1
        persona_uses[persona.id] += 1
        intensity = rng.randint(*situation.intensity)
        seeds.append(Seed(
            id=seed_id(index, persona, situation, emotion, intensity), index=index, persona=persona,
            situation=situation, emotion=emotion, problem_type=problem, intensity=intensity,
        ))
    return seeds


def plan_for(catalog: Catalog, config: RunConfig, n: int | None = None) -> list[Seed]:
    """The plan a RunConfig describes: its n (or `n`), its seed and its sampler weights."""
    return plan_seeds(catalog, config.n if n is None else n, config.seed, config.sampler.emotion_weights,
                      config.sampler.problem_type_weights)


def normalized_entropy(values: Sequence[str], support: int | None = None) -> float:
    """Shannon entropy of the value distribution over log(support): 1.0 is perfectly even."""
    counts = Counter(values)
    k = support or len(counts)
    if k <= 1:
        return 1.0 if counts else 0.0
    total = sum(counts.values())
    h = -sum(c / total * math.log(c / total) for c in counts.values())
    return h / math.log(k)


def coverage(seeds: Sequence[Seed], catalog: Catalog) -> dict[str, float | int]:
    """How much of the plausible scenario space a plan (or a finished corpus) covers."""
    cells = plausible_cells(catalog)
    covered = {(s.emotion, s.problem_type) for s in seeds} & set(cells)
    n_personas = len(catalog.personas)
    return {
        "cells_possible": len(cells),
        "cells_covered": len(covered),
        "cell_coverage": len(covered) / len(cells) if cells else 0.0,
        "emotion_entropy": normalized_entropy([s.emotion for s in seeds], len({e for e, _ in cells})),
        "problem_type_entropy": normalized_entropy([s.problem_type for s in seeds], len({p for _, p in cells})),
        "persona_entropy": normalized_entropy([s.persona.id for s in seeds], min(n_personas, len(seeds)) or None),
    }
