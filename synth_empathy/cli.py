"""The `synth-empathy` command line: parses flags, builds a RunConfig, calls the pipeline."""

from __future__ import annotations

import contextlib
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
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


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
    from synth_empathy.run.progress import progress_for

    return progress_for(total)


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
    engine: Annotated[str | None, typer.Option("--engine", help="local (threads here) or ray (actors on Ray).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="An existing Ray cluster for --engine ray; default: a local Ray instance.")] = None,
) -> None:
    """Run the whole pipeline: plan, role-play, filter, write a corpus."""
    from synth_empathy.run.generate import run_generate

    overrides = _model_overrides(backend, model, api_base, api_key_env, judge_model)
    overrides["n"] = n
    for key, value in {"concurrency": concurrency, "seed": seed, "programs_dir": programs}.items():
        if value is not None:
            overrides[key] = value
    if keep_drafts:
        overrides["dialogue"] = {"keep_drafts": True}
    if engine is not None and engine not in ("local", "ray"):
        raise UserError(f"--engine must be 'local' or 'ray', not '{engine}'")
    if engine is not None:
        overrides["engine"] = engine
    cfg = load_config(config, overrides)
    if ray_address is not None and cfg.engine != "ray":
        raise UserError("--ray-address needs --engine ray")
    executor = None
    if cfg.engine == "ray":
        from synth_empathy.run.ray_engine import RayExecutor

        executor = RayExecutor.from_config(cfg.ray, address=ray_address)
    progress = _progress(cfg.n)
    try:
        manifest = run_generate(cfg, out, resume=resume, progress=progress, executor=executor)
    except KeyboardInterrupt:
        import shlex

        # The same command line, plus --resume; the generic form when not run as the command (tests, embedding).
        args = sys.argv[sys.argv.index("generate"):] if "generate" in sys.argv else None
        again = (f"synth-empathy {shlex.join(args + ([] if '--resume' in args else ['--resume']))}" if args else
                 f"synth-empathy generate -n {cfg.n} --out {shlex.quote(str(out))} --resume (and the same settings)")
        typer.echo(f"interrupted: {progress.done} of {cfg.n} seeds written ({progress.kept} kept, "
                   f"{progress.rejected} rejected); the dialogues in flight were abandoned and everything written "
                   f"is valid. Resume with: {again}", err=True)
        raise typer.Exit(130) from None
    c = manifest.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['planned']} planned -> {out}")
    if c.get("to_retry"):
        typer.echo(f"{c['to_retry']} seeds failed to generate; run the same command again to retry them "
                   f"(at most {cfg.run.max_attempts} attempts per seed)", err=True)


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
    from synth_empathy.graphs.sampler import coverage, plan_for

    cfg = load_config(config)
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    nodes, edges = counts_by_kind(build_graph(catalog))
    cov = coverage(plan_for(catalog, cfg, plan), catalog) if plan else {}
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


@graph_app.command("export")
@handles_errors
def graph_export(
    out: Annotated[Path, typer.Option("--out", help="FILE.graphml or FILE.json (node-link).")],
    config: ConfigOpt = None,
) -> None:
    """Write the persona/scenario graph as GraphML or node-link JSON."""
    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.graph import build_graph, export_graph

    cfg = load_config(config)
    g = build_graph(load_catalog(cfg.personas_dir, cfg.scenarios_dir))
    fmt = export_graph(g, out)
    typer.echo(f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges -> {out} ({fmt})")


@graph_app.command("expand")
@handles_errors
def graph_expand(
    out: Annotated[Path, typer.Option("--out", help="Folder for personas/expanded.yaml, scenarios/expanded.yaml.")],
    personas: Annotated[int, typer.Option("--personas", help="New personas to propose.")] = 5,
    situations: Annotated[int, typer.Option("--situations", help="New situations to propose.")] = 5,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
) -> None:
    """LM-expand the catalogs: new nodes grounded on neighbours, validated, near-duplicates dropped."""
    import random

    import dspy

    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.expand import Expansion, expand_personas, expand_situations, write_expansion
    from synth_empathy.lm import PlainAdapter, build_lm

    cfg = load_config(config, _model_overrides(backend, model, api_base, api_key_env, None))
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    rng = random.Random(cfg.seed)
    result = Expansion()
    with dspy.context(lm=build_lm(cfg.model), adapter=PlainAdapter()):
        expand_personas(catalog, personas, rng, result)
        expand_situations(catalog, situations, rng, result)
    paths = write_expansion(result, out)
    typer.echo(f"{len(result.personas)} personas, {len(result.situations)} situations kept; dropped {result.dropped}"
               f" -> {', '.join(map(str, paths)) or 'nothing written'}")


@graph_app.command("import")
@handles_errors
def graph_import(
    file: Annotated[Path, typer.Argument(help="ED CSV, ESConv JSON, chat JSON/JSONL, situations JSONL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for scenarios/imported.yaml and reference dialogues.")],
    fmt: Annotated[str | None, typer.Option("--format", help="Skip detection: ed_csv|esconv|chat|situations.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Turn a dataset into scenario nodes and reference dialogues for augmentation."""
    from synth_empathy.corpus.importers import read_dataset, write_import

    cfg = load_config(config)
    report = write_import(read_dataset(file, fmt), out, scenarios_dir=cfg.scenarios_dir)
    typer.echo(json.dumps({k: report[k] for k in report if k != "bad_rows"}, indent=2))
    bad = report.get("bad_rows", [])
    if bad:
        typer.echo(f"{len(bad)} bad rows (listed in {out / 'import_report.json'})", err=True)


@contextlib.contextmanager
def _writing(outputs: list[Path], inputs: list[Path], overwrite: bool):
    """A command that writes files: the one rule for outputs (never an input, --overwrite to replace), checked
    under the one-writer lock of its main output."""
    from synth_empathy.corpus.lock import output_lock
    from synth_empathy.corpus.outputs import check_outputs

    check_outputs(outputs, inputs, overwrite=overwrite)
    with output_lock(outputs[0], folder=False):
        check_outputs(outputs, inputs, overwrite=overwrite)  # again: another writer may have just finished
        yield


def _judge_setup(config, backend, model, api_base, api_key_env, judge_model):
    from synth_empathy.lm import build_lm, model_label
    from synth_empathy.run.generate import judge_model_config

    cfg = load_config(config, _model_overrides(backend, model, api_base, api_key_env, judge_model))
    judge_cfg = judge_model_config(cfg)
    return cfg, build_lm(judge_cfg), model_label(judge_cfg)


def _counter(total: int, what: str):
    def tick(i: int) -> None:
        typer.echo(f"[{i + 1}/{total}] {what}", err=True)

    return tick


@app.command("filter")
@handles_errors
def filter_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or ED CSV / ESConv JSON / chat JSON(L).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (same layout as generate).")],
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_model: JudgeModelOpt = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Print kept counts over a grid of thresholds.")] = False,
    select: Annotated[float | None, typer.Option(
        "--select", help="Also write the Efficient-Empathy split for threshold T (scores > T).")] = None,
) -> None:
    """Rules, near-duplicate removal and the judge over an existing corpus."""
    from synth_empathy.run.corpus_filter import format_sweep, run_filter

    cfg, judge_lm, label = _judge_setup(config, backend, model, api_base, api_key_env, judge_model)
    manifest, table = run_filter(cfg, source, out, judge_lm, label, select=select)
    (out / "sweep.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    if sweep:
        typer.echo(format_sweep(table))
    c = manifest.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['planned']} -> {out}")


@app.command("dedup")
@handles_errors
def dedup_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or an importable dataset.")],
    out: Annotated[Path, typer.Option("--out", help="JSONL of the dialogues kept.")],
    threshold: Annotated[float | None, typer.Option("--threshold", help="Jaccard threshold (default 0.8).")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Near-duplicate removal alone; the duplicates go to OUT's sibling .duplicates.jsonl."""
    from synth_empathy.filters.dedup import dedup_dialogues
    from synth_empathy.run.corpus_filter import load_dialogues

    cfg = load_config(config, {"dedup": {"threshold": threshold}} if threshold is not None else {})
    dup_path, bad_path = out.with_name(out.stem + ".duplicates.jsonl"), out.with_name(out.stem + ".bad_rows.jsonl")
    with _writing([out, dup_path, bad_path], [source], overwrite):
        dialogues = load_dialogues(source, bad_rows_to=bad_path)
        kept, dropped = dedup_dialogues(dialogues, cfg.dedup)
        out.write_text("".join(d.model_dump_json(exclude_none=True) + "\n" for d in kept), encoding="utf-8")
        dup_path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in dropped), encoding="utf-8")
    typer.echo(f"{len(kept)} kept, {len(dropped)} duplicates -> {out}, {dup_path}")


@app.command("judge")
@handles_errors
def judge_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or an importable dataset.")],
    out: Annotated[Path, typer.Option("--out", help="JSONL of {id, scores} (or {id, error}).")],
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_model: JudgeModelOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Scores alone: sensibility, rationality, EPITOME levels, failure flags."""
    from synth_empathy.run.corpus_filter import judge_all, load_dialogues
    from synth_empathy.schema import Dialogue

    cfg, judge_lm, _ = _judge_setup(config, backend, model, api_base, api_key_env, judge_model)
    bad_path = out.with_name(out.stem + ".bad_rows.jsonl")
    with _writing([out, bad_path], [source], overwrite):
        dialogues = load_dialogues(source, bad_rows_to=bad_path)
        outcomes = judge_all(dialogues, cfg, judge_lm, on_done=_counter(len(dialogues), "judged"))
        with open(out, "w", encoding="utf-8") as f:
            for o in outcomes:
                rec = {"id": o.id, "scores": o.scores.model_dump()} if isinstance(o, Dialogue) else {
                    "id": o.id, "error": o.detail}
                f.write(json.dumps(rec) + "\n")
    failed = sum(not isinstance(o, Dialogue) for o in outcomes)
    typer.echo(f"{len(outcomes) - failed} scored, {failed} failed -> {out}")


@app.command("judge-eval")
@handles_errors
def judge_eval_cmd(
    files: Annotated[list[Path], typer.Argument(help="EPITOME CSVs (one per mechanism) or JSONL files.")],
    fmt: Annotated[str, typer.Option("--format", help="epitome or jsonl.")] = "epitome",
    mechanism: Annotated[str | None, typer.Option("--mechanism", help="er, ip or ex (else from the name).")] = None,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_model: JudgeModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Agreement of the judge with human labels: accuracy, Cohen's kappa, Spearman per mechanism."""
    import dspy

    from synth_empathy.filters.judge_eval import evaluate, read_labelled
    from synth_empathy.lm import PlainAdapter
    from synth_empathy.programs import load_programs

    cfg, judge_lm, label = _judge_setup(config, backend, model, api_base, api_key_env, judge_model)
    pairs = [p for f in files for p in read_labelled(f, fmt, mechanism)]
    judge = load_programs(programs_dir=cfg.programs_dir).judge
    with dspy.context(lm=judge_lm, adapter=PlainAdapter()):
        results = evaluate(pairs, judge, on_pair=_counter(len(pairs), "judged"))
    if as_json:
        typer.echo(json.dumps({"judge": label, "mechanisms": results}, indent=2))
        return
    typer.echo(f"judge: {label}")
    typer.echo(f"{'mechanism':<10} {'n':>5} {'accuracy':>9} {'kappa':>7} {'spearman':>9}")
    for mech, r in results.items():
        rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
        typer.echo(f"{mech:<10} {r['n']:>5} {r['accuracy']:>9.3f} {r['kappa']:>7.3f} {rho:>9}")


@app.command("optimize")
@handles_errors
def optimize_cmd(
    program: Annotated[str, typer.Option("--program", help="supporter, seeker or critique.")],
    trainset: Annotated[Path, typer.Option("--trainset", help="Our JSONL or an importable dataset.")],
    out: Annotated[Path, typer.Option("--out", help="FILE.json, or a folder (gets <program>.json).")],
    optimizer: Annotated[str, typer.Option("--optimizer", help="bootstrap, mipro or gepa.")] = "bootstrap",
    budget: Annotated[int, typer.Option("--budget", help="Demos / candidates / trials cap.")] = 2,
    limit: Annotated[int, typer.Option("--limit", help="At most this many training examples.")] = 8,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_model: JudgeModelOpt = None,
) -> None:
    """Compile a program with a DSPy optimizer, the judge as metric; `generate --programs DIR` loads it."""
    import dspy

    from synth_empathy.lm import PlainAdapter, build_lm
    from synth_empathy.optimize import OPTIMIZERS, TRAINABLE, compile_program, save_program
    from synth_empathy.optimize import trainset as examples_of
    from synth_empathy.programs import load_programs
    from synth_empathy.run.corpus_filter import load_dialogues

    if program not in TRAINABLE:
        raise UserError(f"--program must be one of {', '.join(TRAINABLE)}, not '{program}'")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")
    cfg, judge_lm, _ = _judge_setup(config, backend, model, api_base, api_key_env, judge_model)
    programs = load_programs(cfg.dialogue.critique_rounds, cfg.programs_dir)
    examples = examples_of(program, load_dialogues(trainset), limit)
    with dspy.context(lm=build_lm(cfg.model), adapter=PlainAdapter()):
        compiled = compile_program(program, optimizer, programs, examples, judge_lm, budget)
    path = save_program(compiled, out, program)
    typer.echo(f"{program} optimized with {optimizer} on {len(examples)} examples -> {path}")


@app.command("export")
@handles_errors
def export_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder (dialogues.jsonl, manifest.json).")],
    fmt: Annotated[str, typer.Option("--format", help="openai, sharegpt or hf.")],
    out: Annotated[Path, typer.Option("--out", help="Output file (openai, sharegpt) or folder (hf).")],
    min_sensibility: Annotated[float | None, typer.Option("--min-sensibility")] = None,
    min_rationality: Annotated[float | None, typer.Option("--min-rationality")] = None,
    emotion: Annotated[list[str] | None, typer.Option("--emotion", help="Keep these emotions (repeatable).")] = None,
    problem_type: Annotated[list[str] | None, typer.Option("--problem-type", help="Repeatable.")] = None,
    strategy: Annotated[list[str] | None, typer.Option("--strategy", help="Repeatable.")] = None,
    targets: Annotated[str, typer.Option("--targets", help="openai: train on all|last supporter turns.")] = "all",
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    split: Annotated[str | None, typer.Option("--split", help="hf: train,validation,test e.g. 0.8,0.1,0.1.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="hf: seed of the split.")] = 0,
    push: Annotated[str | None, typer.Option("--push", help="hf: publish to this Hub repo (HF_TOKEN).")] = None,
    private: Annotated[bool, typer.Option("--private", help="hf: push as a private repo.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Convert a corpus for trainers: OpenAI chat fine-tuning JSONL, ShareGPT, or a Hugging Face dataset."""
    from synth_empathy.publish.exports import build_filter, export_corpus

    flt = build_filter(min_sensibility=min_sensibility, min_rationality=min_rationality, emotions=emotion,
                       problem_types=problem_type, strategies=strategy)
    result = export_corpus(corpus, fmt, out, filters=flt, targets=targets, system_prompt=system_prompt, split=split,
                           seed=seed, push=push, private=private, overwrite=overwrite)
    typer.echo(result.summary())


@app.command("report")
@handles_errors
def report_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    sample: Annotated[int, typer.Option("--sample", help="Dialogues shown in the browsable sample.")] = 24,
) -> None:
    """A self-contained HTML report with plots and a sample of dialogues; opens offline."""
    from synth_empathy.publish.report import write_report

    typer.echo(f"report -> {write_report(corpus, out, sample_size=sample)}")


@app.command("stats")
@handles_errors
def stats_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts, keep rate, score histograms, coverage, tokens and cost of a corpus."""
    from synth_empathy.publish.stats import format_stats, stats_for_dir

    stats = stats_for_dir(corpus)
    typer.echo(json.dumps(stats, indent=2) if as_json else format_stats(stats))


def main() -> None:
    app(prog_name="synth-empathy")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
