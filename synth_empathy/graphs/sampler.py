"""Coverage-aware seed planning: every plausible (emotion x problem type) cell before any repeats."""

from __future__ import annotations

import difflib
import hashlib
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

from synth_empathy.config import MAX_N, RunConfig
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import Catalog
from synth_empathy.graphs.graph import plausible
from synth_empathy.graphs.split import split_catalog
from synth_empathy.languages import DEFAULT_LANGUAGE, language_rota
from synth_empathy.schema import (
    DISCLOSURE_PACES,
    PUSHBACK_LEVELS,
    RESISTANCE_LEVELS,
    Persona,
    Seed,
    SeekerProfile,
    Situation,
)

Cell = tuple[str, str]


def seed_id(index: int, persona: Persona, situation: Situation, emotion: str, intensity: int,
            language: str = DEFAULT_LANGUAGE) -> str:
    # English ids stay what they were before seeds had a language; any other language makes other ids.
    tail = "" if language == DEFAULT_LANGUAGE else f"|{language}"
    blob = f"{index}|{persona.id}|{situation.id}|{emotion}|{intensity}{tail}".encode()
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


def _check_weight_names(catalog: Catalog, emotion_weights: dict[str, float],
                        problem_weights: dict[str, float]) -> None:
    """A misspelled name would weigh nothing and leave its cells at weight 1: say which, and what is close."""
    for setting, weights, known in (("emotion_weights", emotion_weights, [e.id for e in catalog.emotions]),
                                    ("problem_type_weights", problem_weights, [p.id for p in catalog.problem_types])):
        for name in weights:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
                hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
                raise UserError(f"sampler.{setting}: '{name}' is not in the catalog{hint}")


def plan_seeds(catalog: Catalog, n: int, seed: int = 0, emotion_weights: dict[str, float] | None = None,
               problem_type_weights: dict[str, float] | None = None,
               language: str | Mapping[str, float] = DEFAULT_LANGUAGE) -> list[Seed]:
    """The plan as a list; see `iter_seeds`."""
    return list(iter_seeds(catalog, n, seed, emotion_weights, problem_type_weights, language))


def iter_seeds(catalog: Catalog, n: int, seed: int = 0, emotion_weights: dict[str, float] | None = None,
               problem_type_weights: dict[str, float] | None = None,
               language: str | Mapping[str, float] = DEFAULT_LANGUAGE) -> Iterator[Seed]:
    """Deterministic for (catalog, n, seed, weights), one seed at a time: the memory of a plan does not grow with n.
    Cells are visited round-robin in a shuffled order, so every cell is used once before any repeats (weights
    > 1 repeat a cell within a round, 0 leaves it out); inside a cell the least-used situation wins, and the
    persona is the least-used plausible one, which spreads personas evenly; each seed gets a seeker profile from a
    ProfileSampler, which balances every profile level the same way. Bad n or weights raise at the call,
    not at the first seed. `language` is one code or a {code: weight} mix, whose languages the seeds take in
    turn (`language_rota`); the language does not change which persona, situation or emotion a seed gets."""
    if not 0 <= n <= MAX_N:
        raise UserError(f"a plan holds 0 to {MAX_N:,} seeds, not {n:,}")
    _check_weight_names(catalog, emotion_weights or {}, problem_type_weights or {})
    cells = plausible_cells(catalog)
    round_cells = _weighted_round(cells, emotion_weights or {}, problem_type_weights or {})
    if not round_cells:
        raise UserError("the sampler weights leave no (emotion x problem type) cell to sample")
    return _seeds(catalog, n, random.Random(seed), cells, round_cells, language_rota(language),
                  ProfileSampler(f"profiles:{seed}"))


# Each profile dimension and its levels, in SeekerProfile's field order.
PROFILE_LEVELS: dict[str, tuple] = {"resistance": RESISTANCE_LEVELS, "disclosure": DISCLOSURE_PACES,
                                    "pushback": PUSHBACK_LEVELS, "relapse": (False, True)}


class ProfileSampler:
    """Seeker profiles balanced like the cells: each dimension takes its least-used level so far (ties broken at
    random), so every level of every dimension is used equally often, to within one, in any prefix of a plan.
    Its own random stream keeps the scenario plan (and so every seed id) what it was before profiles existed."""

    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)
        self.uses: dict[str, Counter] = {name: Counter() for name in PROFILE_LEVELS}

    def next(self) -> SeekerProfile:
        chosen = {}
        for name, levels in PROFILE_LEVELS.items():
            fewest = min(self.uses[name][level] for level in levels)
            chosen[name] = self.rng.choice([level for level in levels if self.uses[name][level] == fewest])
            self.uses[name][chosen[name]] += 1
        return SeekerProfile(**chosen)


def _seeds(catalog: Catalog, n: int, rng: random.Random, cells: dict[Cell, list[Situation]],
           round_cells: list[Cell], languages: list[str], profiles: ProfileSampler) -> Iterator[Seed]:
    order: list[Cell] = []
    situation_uses: Counter[str] = Counter()
    persona_uses: Counter[str] = Counter()
    # Which personas may play each situation, worked out once, not once a seed.
    plausible_personas: dict[str, list[Persona]] = {}
    for index in range(n):
        if not order:
            order = list(round_cells)
            rng.shuffle(order)
        emotion, problem = order.pop()
        options = cells[(emotion, problem)]
        least = min(situation_uses[s.id] for s in options)
        situation = rng.choice([s for s in options if situation_uses[s.id] == least])
        personas = plausible_personas.get(situation.id)
        if personas is None:
            personas = plausible_personas[situation.id] = [p for p in catalog.personas if plausible(p, situation)]
        fewest = min(persona_uses[p.id] for p in personas)
        persona = rng.choice([p for p in personas if persona_uses[p.id] == fewest])
        situation_uses[situation.id] += 1
        persona_uses[persona.id] += 1
        intensity = rng.randint(*situation.intensity)
        language = languages[index % len(languages)]
        yield Seed(
            id=seed_id(index, persona, situation, emotion, intensity, language), index=index, persona=persona,
            situation=situation, emotion=emotion, problem_type=problem, intensity=intensity, language=language,
            profile=profiles.next(),
        )


def plan_for(catalog: Catalog, config: RunConfig, n: int | None = None) -> list[Seed]:
    """The plan a RunConfig describes: its n (or `n`), its seed and its sampler weights."""
    return list(iter_plan(catalog, config, n))


def iter_plan(catalog: Catalog, config: RunConfig, n: int | None = None) -> Iterator[Seed]:
    """`plan_for`, one seed at a time; `[sampler] split = "train"` leaves out the situations `eval` plays."""
    if config.sampler.split == "train":
        catalog = split_catalog(catalog, "train")
    return iter_seeds(catalog, config.n if n is None else n, config.seed, config.sampler.emotion_weights,
                      config.sampler.problem_type_weights, config.run.language)


def normalized_entropy(values: Iterable[str] | Counter[str], support: int | None = None) -> float:
    """Shannon entropy of the value distribution (values, or their counts) over log(support): 1.0 is perfectly even."""
    counts = values if isinstance(values, Counter) else Counter(values)
    k = support or len(counts)
    if k <= 1:
        return 1.0 if counts else 0.0
    total = sum(counts.values())
    h = -sum(c / total * math.log(c / total) for c in counts.values())
    return h / math.log(k)


def coverage(seeds: Iterable[Seed], catalog: Catalog) -> dict[str, float | int]:
    """How much of the plausible scenario space a plan (or a finished corpus) covers; one pass over `seeds`,
    which may be a stream (`iter_plan`)."""
    emotions: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    personas: Counter[str] = Counter()
    seen: set[Cell] = set()
    total = 0
    for s in seeds:
        total += 1
        emotions[s.emotion] += 1
        problems[s.problem_type] += 1
        personas[s.persona.id] += 1
        seen.add((s.emotion, s.problem_type))
    return coverage_of_counts(emotions, problems, personas, seen, total, catalog)


def coverage_of_counts(emotions: Counter[str], problems: Counter[str], personas: Counter[str], seen: set[Cell],
                       total: int, catalog: Catalog) -> dict[str, float | int]:
    """`coverage` of seeds already counted by emotion, problem type, persona and (emotion, problem) cell."""
    cells = plausible_cells(catalog)
    covered = seen & set(cells)
    n_personas = len(catalog.personas)
    return {
        "cells_possible": len(cells),
        "cells_covered": len(covered),
        "cell_coverage": len(covered) / len(cells) if cells else 0.0,
        "emotion_entropy": normalized_entropy(emotions, len({e for e, _ in cells})),
        "problem_type_entropy": normalized_entropy(problems, len({p for _, p in cells})),
        "persona_entropy": normalized_entropy(personas, min(n_personas, total) or None),
    }
