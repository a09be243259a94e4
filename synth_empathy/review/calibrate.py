"""`synth-empathy calibrate DIR`: the folder's labels against its judge scores, recorded in manifest.json,
and the proposed keep thresholds written into a config file when asked."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from synth_empathy.config import load_config
from synth_empathy.corpus.manifest import read_manifest, write_manifest
from synth_empathy.errors import UserError
from synth_empathy.filters.calibration import RESAMPLES, calibrate
from synth_empathy.review.items import keep_thresholds, load_items
from synth_empathy.review.labels import LABELS, read_labels
from synth_empathy.schema import Label, Manifest


def human_agreement_for(corpus_dir: Path, labels: list[Label] | None = None, resamples: int = RESAMPLES,
                        seed: int = 0) -> dict[str, Any]:
    """calibrate() over DIR's dialogues (kept and rejected) and DIR/labels.jsonl (or the labels given)."""
    corpus_dir = Path(corpus_dir)
    items = load_items(corpus_dir)
    labels = read_labels(corpus_dir / LABELS) if labels is None else labels
    if not labels:
        raise UserError(f"{corpus_dir / LABELS} holds no labels yet; label some with `synth-empathy review "
                        f"{corpus_dir}`")
    known = {it.id for it in items}
    foreign = sorted({label.dialogue_id for label in labels} - known)
    if foreign:
        raise UserError(f"{corpus_dir / LABELS} labels {len(foreign)} dialogue(s) this folder does not hold "
                        f"(first: {foreign[0]}); calibrate the folder the labels were made in")
    scores = {it.id: it.dialogue.scores for it in items if it.dialogue.scores is not None}
    return calibrate(labels, scores, keep_thresholds(corpus_dir), resamples=resamples, seed=seed)


def record_agreement(corpus_dir: Path, figures: dict[str, Any]) -> Manifest | None:
    """Store the figures as manifest.json's `human_agreement`; None when the folder has no manifest."""
    manifest = read_manifest(Path(corpus_dir))
    if manifest is None:
        return None
    manifest.human_agreement = figures
    write_manifest(Path(corpus_dir), manifest)
    return manifest


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def _set_toml_judge(text: str, values: dict[str, float]) -> str:
    """Set keys of the [judge] table in TOML text, keeping every other line (and comment) as it was."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if (m := _HEADER.match(line)) and m.group(1).strip() == "judge"),
                 None)
    if start is None:
        if "judge" in tomllib.loads(text):
            raise UserError("the config sets judge as an inline table or dotted keys; edit its thresholds by hand")
        return text.rstrip("\n") + ("\n\n" if text.strip() else "") + "[judge]\n" + "".join(
            f"{k} = {v:g}\n" for k, v in values.items())
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i]) or lines[i].lstrip().startswith(
        "[[")), len(lines))
    missing = dict(values)
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if key in missing:
            lines[i] = f"{key} = {missing.pop(key):g}"
    lines[start + 1:start + 1] = [f"{k} = {v:g}" for k, v in missing.items()]
    return "\n".join(lines) + "\n"


def write_thresholds(path: Path, min_sensibility: float, min_rationality: float) -> None:
    """Write judge.min_sensibility / min_rationality into a TOML (or YAML) config, creating it if need be;
    the result must still load as a RunConfig."""
    path = Path(path)
    values = {"min_sensibility": min_sensibility, "min_rationality": min_rationality}
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise UserError(f"config file {path} must hold a table of settings")
        data.setdefault("judge", {}).update(values)
        new = yaml.safe_dump(data, sort_keys=False)
    elif path.suffix == ".toml":
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config file {path} is not valid TOML: {exc}") from exc
        new = _set_toml_judge(text, values)
    else:
        raise UserError(f"--write-config {path} must end in .toml, .yaml or .yml")
    # Written beside the config with its suffix, loaded as a RunConfig, then moved over it in one step.
    tmp = path.with_name(f".{path.stem}.calibrate{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(new, encoding="utf-8")
    try:
        load_config(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
