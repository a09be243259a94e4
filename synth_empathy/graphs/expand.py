"""Grow the catalogs with an LM: new personas and situations grounded on sampled neighbours,
validated against the schema, near-duplicates of existing nodes dropped, written as reviewable YAML."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import dspy
import pydantic
import yaml
from dspy.utils.exceptions import AdapterParseError

from synth_empathy.config import RunConfig
from synth_empathy.graphs.catalog import Catalog, load_catalog
from synth_empathy.graphs.sampler import plausible_cells
from synth_empathy.lm import PlainAdapter, build_lm
from synth_empathy.programs.expand import NewPersona, NewSituation
from synth_empathy.schema import Persona, Situation
from synth_empathy.text import jaccard, words

NEAR_DUPLICATE = 0.6  # word-set Jaccard above which a new node repeats an old one


def is_near_duplicate(text: str, existing: list[str], threshold: float = NEAR_DUPLICATE) -> bool:
    mine = set(words(text))
    return bool(mine) and any(jaccard(mine, set(words(e))) >= threshold for e in existing)


@dataclass
class Expansion:
    personas: list[Persona] = field(default_factory=list)
    situations: list[Situation] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def expand_personas(catalog: Catalog, n: int, rng: random.Random, out: Expansion) -> None:
    propose = dspy.Predict(NewPersona)
    bios = [p.bio for p in catalog.personas]
    for _ in range(n):
        sample = rng.sample(catalog.personas, k=min(3, len(catalog.personas)))
        neighbours = "\n".join(f"- {p.name}, {p.age_band}, {p.occupation}, {p.region}: {p.bio}" for p in sample)
        try:
            pred = propose(neighbours=neighbours)
            traits = sorted({t for p in sample for t in p.traits})[:2]
            persona = Persona(id=f"px{len(catalog.personas) + len(out.personas) + 1:03d}", traits=traits,
                              **{k: getattr(pred, k) for k in NewPersona.output_fields})
        except (pydantic.ValidationError, ValueError, AdapterParseError) as exc:
            out.drop(f"invalid: {type(exc).__name__}")
            continue
        if is_near_duplicate(persona.bio, bios):
            out.drop("near_duplicate")
            continue
        bios.append(persona.bio)
        out.personas.append(persona)


def expand_situations(catalog: Catalog, n: int, rng: random.Random, out: Expansion) -> None:
    propose = dspy.Predict(NewSituation)
    cells = plausible_cells(catalog)
    texts = [s.text for s in catalog.situations]
    # Grow the thinnest cells first: that is where coverage is weakest.
    order = sorted(cells, key=lambda c: (len(cells[c]), rng.random()))
    for i in range(n):
        emotion, problem = order[i % len(order)]
        neighbours = "\n".join(f"- {s.text}" for s in cells[(emotion, problem)][:3])
        try:
            pred = propose(problem_type=problem, emotion=emotion, neighbours=neighbours)
            low, high = sorted((pred.intensity_low, pred.intensity_high))
            situation = Situation(id=f"sx_{len(catalog.situations) + len(out.situations) + 1:04d}", text=pred.text,
                                  emotions=[emotion], problem_type=problem, domain=pred.domain, intensity=(low, high),
                                  hidden_details=[d for d in pred.hidden_details if d.strip()][:3])
        except (pydantic.ValidationError, ValueError, AdapterParseError) as exc:
            out.drop(f"invalid: {type(exc).__name__}")
            continue
        if is_near_duplicate(situation.text, texts):
            out.drop("near_duplicate")
            continue
        texts.append(situation.text)
        out.situations.append(situation)


def expand_catalog(config: RunConfig, personas: int, situations: int) -> Expansion:
    """Propose `personas` new personas and `situations` new situations for the config's catalog, with its
    generator model; seeded by `config.seed`."""
    catalog = load_catalog(config.personas_dir, config.scenarios_dir)
    rng = random.Random(config.seed)
    result = Expansion()
    with dspy.context(lm=build_lm(config.model), adapter=PlainAdapter()):
        expand_personas(catalog, personas, rng, result)
        expand_situations(catalog, situations, rng, result)
    return result


def write_expansion(expansion: Expansion, out_dir: Path) -> list[Path]:
    """personas/expanded.yaml and scenarios/expanded.yaml under out_dir: copy them into the catalogs after review."""
    written = []
    for kind, items, folder in (("personas", expansion.personas, "personas"),
                                ("situations", expansion.situations, "scenarios")):
        if not items:
            continue
        path = Path(out_dir) / folder / "expanded.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {kind: [item.model_dump(mode="json", exclude_defaults=False) for item in items]}
        path.write_text("# LM-expanded nodes: review before copying into the catalog.\n"
                        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    return written
