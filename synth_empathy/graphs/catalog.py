"""Load and check the persona and scenario catalogs (YAML files under personas/ and scenarios/)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from synth_empathy.errors import UserError
from synth_empathy.schema import EMOTIONS, Emotion, Persona, ProblemType, Situation, Source, Trait
from synth_empathy.userfiles import read_text, reading

_KINDS: dict[str, type[pydantic.BaseModel]] = {
    "traits": Trait,
    "personas": Persona,
    "emotions": Emotion,
    "problem_types": ProblemType,
    "situations": Situation,
    "sources": Source,
}


@dataclass
class Catalog:
    personas: list[Persona] = field(default_factory=list)
    traits: list[Trait] = field(default_factory=list)
    emotions: list[Emotion] = field(default_factory=list)
    problem_types: list[ProblemType] = field(default_factory=list)
    situations: list[Situation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)  # imported datasets (graph import), with their licences


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"catalog folder {folder} does not exist")
    found = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml"))
    not_files = [p for p in found if not p.is_file()]
    if not_files:
        raise UserError(f"{not_files[0]} is named like a catalog file but is not a file; rename it or move it "
                        f"out of {folder}")
    return found


def _load_file(path: Path, catalog: Catalog, where: dict[tuple[str, str], str]) -> None:
    try:
        with reading(path):
            data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        return
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with keys among {sorted(_KINDS)}")
    for kind, items in data.items():
        model = _KINDS.get(kind)
        if model is None:
            raise UserError(f"{path}: unknown key '{kind}' (expected one of {sorted(_KINDS)})")
        if not isinstance(items, list):
            raise UserError(f"{path}: '{kind}' must be a list")
        for i, item in enumerate(items):
            label = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
            try:
                obj = model.model_validate(item)
            except pydantic.ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"]) or "entry"
                raise UserError(f"{path}: {kind} entry {label}, field {loc}: {err['msg']}") from exc
            key = (kind, obj.id)
            if key in where:
                raise UserError(f"{path}: {kind} entry {obj.id}: duplicate id (first defined in {where[key]})")
            where[key] = str(path)
            getattr(catalog, kind).append(obj)


def _check_refs(catalog: Catalog, where: dict[tuple[str, str], str]) -> None:
    def missing(kind: str, ids: Iterable[str], known: set[str], owner_kind: str, owner: str, what: str) -> None:
        for ref in ids:
            if ref not in known:
                raise UserError(
                    f"{where[(owner_kind, owner)]}: {owner_kind} entry {owner}: unknown {what} '{ref}'"
                )

    traits = {t.id for t in catalog.traits}
    emotions = {e.id for e in catalog.emotions}
    problems = {p.id for p in catalog.problem_types}
    unknown_emotions = emotions - set(EMOTIONS)
    if unknown_emotions:
        emotion = sorted(unknown_emotions)[0]
        raise UserError(f"{where[('emotions', emotion)]}: emotion '{emotion}' is not one of the 32 ED emotion labels")
    for p in catalog.personas:
        missing("traits", p.traits, traits, "personas", p.id, "trait")
    for e in catalog.emotions:
        missing("emotions", e.related, emotions, "emotions", e.id, "related emotion")
    for s in catalog.situations:
        missing("situations", s.emotions, emotions, "situations", s.id, "emotion")
        missing("situations", [s.problem_type], problems, "situations", s.id, "problem type")
        missing("situations", [s.source] if s.source else [], {src.id for src in catalog.sources}, "situations",
                s.id, "source")


def load_catalog(personas_dir: Path, scenarios_dir: Path) -> Catalog:
    """Read every YAML file in both folders; refuse a bad file with its path, entry and reason."""
    catalog = Catalog()
    where: dict[tuple[str, str], str] = {}
    for folder in (personas_dir, scenarios_dir):
        for path in _yaml_files(Path(folder)):
            _load_file(path, catalog, where)
    for kind in ("personas", "emotions", "problem_types", "situations"):
        if not getattr(catalog, kind):
            raise UserError(f"the catalogs in {personas_dir} and {scenarios_dir} define no {kind.replace('_', ' ')}")
    _check_refs(catalog, where)
    return catalog


def seeded_sources(catalog: Catalog, situations: Iterable[Situation]) -> list[Source]:
    """The imported sources (with their licences) that any of `situations` came from, in catalog order."""
    used = {s.source for s in situations if s.source}
    return [src for src in catalog.sources if src.id in used]


def catalog_counts(catalog: Catalog) -> dict[str, Any]:
    return {kind: len(getattr(catalog, kind)) for kind in _KINDS}
