"""manifest.json: what a run was (config, versions, models) and what it did (counts, usage, timings), built
in one place for every command that writes an output directory."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pydantic

from synth_empathy.config import RunConfig
from synth_empathy.corpus.store import MANIFEST_FILE, Tally
from synth_empathy.errors import UserError
from synth_empathy.schema import Manifest, Source, StageUsage
from synth_empathy.userfiles import read_text

VERSIONED = ("synth-empathy", "dspy", "llama_cpp_python", "datasketch", "networkx", "pydantic", "openai")


def package_version() -> str:
    try:
        return version("synth-empathy")
    except PackageNotFoundError:
        return "0+unknown"


def versions() -> dict[str, str]:
    """Python and the packages whose version changes what a run writes."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def now() -> str:
    """The time stamps of records and manifests: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_manifest(config: RunConfig, *, models: dict[str, str | None], planned: int, tally: Tally,
                   usage: dict[str, StageUsage], timings: dict[str, float], created: str,
                   finished: str | None, extra_counts: dict[str, int] | None = None,
                   structured_output: dict[str, str] | None = None,
                   human_agreement: dict | None = None, budget: dict | None = None,
                   sources: Sequence[Source] = (), pii: dict | None = None,
                   local_engine: dict[str, dict] | None = None) -> Manifest:
    """The manifest of an output directory; the cost is known only when every stage that made calls has one."""
    costs = [u.cost_usd for u in usage.values() if u.calls]
    tokens = sum(u.input_tokens + u.output_tokens for u in usage.values())
    return Manifest(
        package_version=package_version(),
        config=config.public_dict(),
        config_fingerprint=config.fingerprint(),
        versions=versions(),
        models=models,
        structured_output=structured_output or {},
        counts={"planned": planned, "kept": tally.kept, "rejected": tally.rejected, **(extra_counts or {})},
        rejection_reasons=dict(sorted(tally.reasons.items())),
        usage=usage,
        timings=timings,
        created=created,
        finished=finished,
        cost_usd=round(sum(costs), 6) if costs and None not in costs else None,
        tokens_per_kept=round(tokens / tally.kept, 1) if tally.kept else None,
        human_agreement=human_agreement,  # a resume keeps the calibration
        judge_caveat=_judge_caveat(models),
        budget=budget,
        sources=list(sources),
        pii=pii,
        local_engine=local_engine,
    )


def read_manifest(out_dir: Path) -> Manifest | None:
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(read_text(path))
    except pydantic.ValidationError as exc:
        raise UserError(f"{path} is not a synth-empathy manifest; choose another --out") from exc


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    """Replaced atomically, so a reader never sees half a manifest."""
    path = Path(out_dir) / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _judge_caveat(models: dict[str, str]) -> str | None:
    # Imported here: filters.judge pulls in dspy, seconds of start-up for the readers that import this module
    # (the importers, and through them `dedup`), which never build a manifest.
    from synth_empathy.filters.judge import judge_caveat

    return judge_caveat(models)
