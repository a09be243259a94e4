"""The `synth-empathy` command line: parses flags, builds a RunConfig, calls the pipeline."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from synth_empathy.config import load_config
from synth_empathy.errors import RunError, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Generate and filter synthetic empathetic dialogues.")
graph_app = typer.Typer(no_args_is_help=True, help="Persona and scenario graphs.")
app.add_typer(graph_app, name="graph")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML or YAML file with RunConfig settings.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="local (embedded llama.cpp) or openai.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="GGUF path (local) or model name (openai).")]
ApiBaseOpt = Annotated[str | None, typer.Option("--api-base", help="OpenAI-compatible endpoint URL.")]
ApiKeyEnvOpt = Annotated[str | None, typer.Option("--api-key-env", help="Environment variable holding the key.")]
JudgeModelOpt = Annotated[str | None, typer.Option("--judge-model", help="A separate model for the judge.")]


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handles_errors(fn):
    """Bad input exits 2 with one sentence; a failed run exits 1; no traceback for either."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc), 2)
        except RunError as exc:
            _fail(str(exc), 1)

    return wrapper


def _model_overrides(backend, model, api_base, api_key_env, judge_model) -> dict[str, Any]:
    if backend is not None and backend not in ("local", "openai"):
        raise UserError(f"--backend must be 'local' or 'openai', not '{backend}'")
    model_cfg = {k: v for k, v in {"backend": backend, "model": model, "api_base": api_base,
                                   "api_key_env": api_key_env}.items() if v is not None}
    out: dict[str, Any] = {"model": model_cfg} if model_cfg else {}
    if judge_model:
        out["judge"] = {"model": judge_model}
    return out


def _progress(total: int):
    """A live bar on a terminal, plain log lines elsewhere (CI, pipes)."""
    state = {"done": 0, "kept": 0, "rejected": 0}

    def on_outcome(outcome) -> None:
        from synth_empathy.schema import Dialogue

        state["done"] += 1
        state["kept" if isinstance(outcome, Dialogue) else "rejected"] += 1
        what = "kept" if isinstance(outcome, Dialogue) else f"rejected ({', '.join(outcome.reasons)})"
        typer.echo(f"[{state['done']}/{total}] {outcome.id} {what}", err=True)

    return on_outcome


@app.command()
@handles_errors
def generate(
    n: Annotated[int, typer.Option("-n", "--n", help="How many dialogues to plan.")] = 3,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("outputs/run"),
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_model: JudgeModelOpt = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Dialogues in flight.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the plan.")] = None,
    programs: Annotated[Path | None, typer.Option("--programs", help="Folder of optimized program JSON.")] = None,
    keep_drafts: Annotated[bool, typer.Option("--keep-drafts", help="Keep drafts and critiques.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an earlier run in --out.")] = False,
) -> None:
    """Run the whole pipeline: plan, role-play, filter, write a corpus."""
    from synth_empathy.pipeline import run_generate

    overrides = _model_overrides(backend, model, api_base, api_key_env, judge_model)
    overrides["n"] = n
    for key, value in {"concurrency": concurrency, "seed": seed, "programs_dir": programs}.items():
        if value is not None:
            overrides[key] = value
    if keep_drafts:
        overrides["dialogue"] = {"keep_drafts": True}
    cfg = load_config(config, overrides)
    try:
        manifest = run_generate(cfg, out, resume=resume, on_outcome=_progress(cfg.n))
    except KeyboardInterrupt:
        typer.echo(f"interrupted; everything written is valid. Resume with: synth-empathy generate -n {cfg.n} "
                   f"--out {out} --resume (and the same settings)", err=True)
        raise typer.Exit(130) from None
    c = manifest.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['planned']} planned -> {out}")


@graph_app.command("stats")
@handles_errors
def graph_stats(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    plan: Annotated[int, typer.Option("--plan", help="Also report coverage of an N-seed plan.")] = 1000,
) -> None:
    """Node and edge counts by type, and the coverage of a sampled plan."""
    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.graph import build_graph, counts_by_kind
    from synth_empathy.graphs.sampler import coverage, plan_seeds

    cfg = load_config(config)
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    nodes, edges = counts_by_kind(build_graph(catalog))
    cov = coverage(plan_seeds(catalog, plan, cfg.seed), catalog) if plan else {}
    if as_json:
        typer.echo(json.dumps({**nodes, "edges": edges, "plan_size": plan, "coverage": cov}, indent=2))
        return
    typer.echo("nodes: " + ", ".join(f"{k} {v}" for k, v in nodes.items()))
    typer.echo("edges: " + ", ".join(f"{k} {v}" for k, v in sorted(edges.items())))
    if cov:
        typer.echo(
            f"plan of {plan}: cells {cov['cells_covered']}/{cov['cells_possible']} ({cov['cell_coverage']:.0%}), "
            f"entropy emotions {cov['emotion_entropy']:.3f}, problem types {cov['problem_type_entropy']:.3f}, "
            f"personas {cov['persona_entropy']:.3f}"
        )


@graph_app.command("import")
@handles_errors
def graph_import(
    file: Annotated[Path, typer.Argument(help="ED CSV, ESConv JSON, chat JSON/JSONL, situations JSONL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for scenarios/imported.yaml and reference dialogues.")],
    fmt: Annotated[str | None, typer.Option("--format", help="Skip detection: ed_csv|esconv|chat|situations.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Turn a dataset into scenario nodes and reference dialogues for augmentation."""
    from synth_empathy.graphs.importers import read_dataset, write_import

    cfg = load_config(config)
    report = write_import(read_dataset(file, fmt), out, scenarios_dir=cfg.scenarios_dir)
    typer.echo(json.dumps({k: report[k] for k in report if k != "bad_rows"}, indent=2))
    bad = report.get("bad_rows", [])
    if bad:
        typer.echo(f"{len(bad)} bad rows (listed in {out / 'import_report.json'})", err=True)


def main() -> None:
    app(prog_name="synth-empathy")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
