"""The `synth-empathy` command line: parses flags, builds a RunConfig, calls the pipeline."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from synth_empathy.config import MAX_N, RunConfig, load_config
from synth_empathy.errors import RunError, UserError, error_detail, file_error
from synth_empathy.redact import redact
from synth_empathy.schema import Manifest
from synth_empathy.userfiles import check_out

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Generate and filter synthetic empathetic dialogues.")
graph_app = typer.Typer(no_args_is_help=True, help="Persona and scenario graphs.")
app.add_typer(graph_app, name="graph")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML or YAML file with RunConfig settings.")]

# The model flags every command that calls a model takes, declared once; `model_flags` adds them to a command.
MODEL_FLAGS: dict[str, Any] = {
    "backend": Annotated[str | None, typer.Option(
        "--backend", help="local (embedded llama.cpp), openai (any compatible endpoint) or litellm (any provider).")],
    "model": Annotated[str | None, typer.Option(
        "--model", help="GGUF path (local), model name (openai) or provider/model (litellm).")],
    "api_base": Annotated[str | None, typer.Option("--api-base", help="OpenAI-compatible endpoint URL.")],
    "api_key_env": Annotated[str | None, typer.Option("--api-key-env", help="Environment variable holding the key.")],
    "judge_model": Annotated[str | None, typer.Option("--judge-model", help="A separate model for the judge.")],
}
# Where each flag lands in the RunConfig, so a bad value is reported by its flag.
FLAG_SETTINGS = {"--backend": "model.backend", "--model": "model.model", "--api-base": "model.api_base",
                 "--api-key-env": "model.api_key_env", "--judge-model": "judge.model", "--engine": "engine",
                 "--language": "run.language", "--split": "sampler.split"}


def language_setting(flag: str) -> str | dict[str, float]:
    """--language es is one language; es,en,zh an even mix (a config file can weigh a mix: {es = 2, en = 1})."""
    codes = [c.strip() for c in flag.split(",") if c.strip()]
    if len(codes) != len(set(codes)):
        raise UserError(f"--language names a language twice: {flag}")
    return codes[0] if len(codes) == 1 else dict.fromkeys(codes, 1.0)


@dataclass
class ModelFlags:
    """The model flags of one command line, turned into RunConfig settings."""

    config: Path | None = None
    backend: str | None = None
    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    judge_model: str | None = None

    def overrides(self) -> dict[str, Any]:
        model = {k: v for k, v in {"backend": self.backend, "model": self.model, "api_base": self.api_base,
                                   "api_key_env": self.api_key_env}.items() if v is not None}
        out: dict[str, Any] = {"model": model} if model else {}
        if self.judge_model:
            out["judge"] = {"model": self.judge_model}
        return out

    def run_config(self, **settings: Any) -> RunConfig:
        """The RunConfig of the --config file, these flags and the command's own `settings` (flags win)."""
        return load_config(self.config, {**self.overrides(), **settings}, flags=FLAG_SETTINGS)


def model_flags(judge: bool = True):
    """Give a command --config and the model flags (without --judge-model unless `judge`), handed to it as
    one `flags: ModelFlags` argument."""
    names = ["config", *(n for n in MODEL_FLAGS if judge or n != "judge_model")]

    def wrap(fn):
        own = inspect.signature(fn, eval_str=True)
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=ConfigOpt if n == "config" else MODEL_FLAGS[n]) for n in names]
        params = [q for q in own.parameters.values() if q.name != "flags"]

        @functools.wraps(fn)
        def command(*args, **kwargs):
            flags = ModelFlags(**{n: kwargs.pop(n) for n in names})
            return fn(*args, flags=flags, **kwargs)

        command.__signature__ = own.replace(parameters=params + added)
        return command

    return wrap
MaxCostOpt = Annotated[float | None, typer.Option(
    "--max-cost", min=0, help="USD cap: start no dialogue that would pass it (needs [prices] for every model).")]
BatchOpt = Annotated[bool, typer.Option(
    "--batch", help="Send the judge's calls through the OpenAI Batch API (discounted, answers within 24 h).")]
BatchPollOpt = Annotated[float, typer.Option("--batch-poll", min=0, help="Seconds between polls of a batch.")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Estimate calls, tokens, time and cost from a small pilot (or --out's manifest); write nothing.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
PiiOpt = Annotated[str, typer.Option(
    "--pii", help="Personal data (emails, phones, URLs, handles, addresses, card numbers): report, mask, drop or off.")]


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {redact(message)}", err=True)
    raise typer.Exit(code)


def handles_errors(fn):
    """Bad input exits 2 with one sentence; a failed run exits 1; no traceback for either.

    A file that cannot be read or written (not UTF-8, nested too deep, no such folder, read-only) is bad
    input too: the readers name the file where they can (synth_empathy.userfiles), and whatever reaches
    here unnamed still becomes one sentence.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc), 2)
        except RunError as exc:
            _fail(str(exc), 1)
        except (OSError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            if isinstance(exc, OSError) and exc.filename is None:  # a socket, not a file: the run failed
                _fail(error_detail(exc), 1)
            _fail(str(file_error(exc)), 2)

    return wrapper


def _progress(total: int):
    """A live bar on a terminal, plain log lines elsewhere (CI, pipes)."""
    from synth_empathy.run.progress import progress_for

    return progress_for(total)


@app.command()
@handles_errors
@model_flags()
def generate(
    n: Annotated[int | None, typer.Option(
        "-n", "--n", help="How many dialogues to plan (default: the config's n, else 3).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("outputs/run"),
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Dialogues in flight.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the plan.")] = None,
    programs: Annotated[Path | None, typer.Option("--programs", help="Folder of optimized program JSON.")] = None,
    keep_drafts: Annotated[bool, typer.Option("--keep-drafts", help="Keep drafts and critiques.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an earlier run in --out.")] = False,
    engine: Annotated[str | None, typer.Option("--engine", help="local (threads here) or ray (actors on Ray).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="An existing Ray cluster for --engine ray; default: a local Ray instance.")] = None,
    max_cost: MaxCostOpt = None,
    dry_run: DryRunOpt = False,
    language: Annotated[str | None, typer.Option(
        "--language", help="What the dialogues are written in: es, or es,en,zh for a mix (default en).")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="train: only situations `eval` does not hold out, for a corpus to train on (default all).")
    ] = None,
    *,
    flags: ModelFlags,
) -> None:
    """Run the whole pipeline: plan, role-play, filter, write a corpus."""
    check_out(out, "dir")
    from synth_empathy.run.generate import run_generate

    # A flag wins only when given, so a config file's n (and the rest) is used otherwise.
    settings = {key: value for key, value in {"n": n, "concurrency": concurrency, "seed": seed,
                                              "programs_dir": programs, "engine": engine}.items() if value is not None}
    if keep_drafts:
        settings["dialogue"] = {"keep_drafts": True}
    if ray_address is not None:
        settings["ray"] = {"address": ray_address}
    if language is not None:
        settings["run"] = {"language": language_setting(language)}
    if split is not None:
        settings["sampler"] = {"split": split}
    cfg = flags.run_config(**settings)
    if ray_address is not None and cfg.engine != "ray":
        raise UserError("--ray-address needs --engine ray")
    if dry_run:
        from synth_empathy.run.dry_run import estimate_generate

        typer.echo(estimate_generate(cfg, out).table())
        return
    progress = _progress(cfg.n)
    try:
        manifest = run_generate(cfg, out, resume=resume, progress=progress, max_cost=max_cost)
    except KeyboardInterrupt:
        import shlex

        # The same command line, plus --resume; the generic form when not run as the command (tests, embedding).
        args = sys.argv[sys.argv.index("generate"):] if "generate" in sys.argv else None
        again = (f"synth-empathy {shlex.join(args + ([] if '--resume' in args else ['--resume']))}" if args else
                 f"synth-empathy generate -n {cfg.n} --out {shlex.quote(str(out))} --resume (and the same settings)")
        # Redacted like every other line we print: a key in --api-base must not land in a terminal log.
        again = redact(again)
        typer.echo(f"interrupted: {progress.done} of {cfg.n} seeds written ({progress.kept} kept, "
                   f"{progress.rejected} rejected); the dialogues in flight were abandoned and everything written "
                   f"is valid. Resume with: {again}", err=True)
        raise typer.Exit(130) from None
    c = manifest.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['planned']} planned -> {out}")
    _say_budget(manifest)
    _say_caveat(manifest)
    _say_retry(manifest, cfg)


def _say_budget(manifest: Manifest) -> None:
    budget = manifest.budget
    if budget and budget["stopped"]:
        typer.echo(f"budget reached: ${budget['spent_usd']:.4f} spent of --max-cost ${budget['max_cost_usd']:g}; "
                   "the next dialogue would pass it. Rerun the same command with a higher --max-cost to continue.")


def _say_caveat(manifest: Manifest) -> None:
    if manifest.judge_caveat:
        typer.echo(f"Not a quality claim: {manifest.judge_caveat}.")


def _say_retry(manifest: Manifest, cfg: RunConfig) -> None:
    if manifest.counts.get("to_retry"):
        typer.echo(f"{manifest.counts['to_retry']} seeds failed to generate; run the same command again to retry "
                   f"them (at most {cfg.run.max_attempts} attempts per seed)", err=True)


@graph_app.command("stats")
@handles_errors
def graph_stats(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    plan: Annotated[int, typer.Option("--plan", help="Also report coverage of an N-seed plan (0: none).")] = 1000,
) -> None:
    """Node and edge counts by type, and the coverage of a sampled plan."""
    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.graph import build_graph, counts_by_kind
    from synth_empathy.graphs.sampler import coverage, iter_plan

    if not 0 <= plan <= MAX_N:
        raise UserError(f"--plan must be 0 to {MAX_N:,}, not {plan:,}")
    cfg = load_config(config)
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    nodes, edges = counts_by_kind(build_graph(catalog))
    cov = coverage(iter_plan(catalog, cfg, plan), catalog) if plan else {}
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
    check_out(out, "file")
    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.graph import build_graph, export_graph

    cfg = load_config(config)
    g = build_graph(load_catalog(cfg.personas_dir, cfg.scenarios_dir))
    fmt = export_graph(g, out)
    typer.echo(f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges -> {out} ({fmt})")


@graph_app.command("expand")
@handles_errors
@model_flags(judge=False)
def graph_expand(
    out: Annotated[Path, typer.Option("--out", help="Folder for personas/expanded.yaml, scenarios/expanded.yaml.")],
    personas: Annotated[int, typer.Option("--personas", help="New personas to propose.")] = 5,
    situations: Annotated[int, typer.Option("--situations", help="New situations to propose.")] = 5,
    *,
    flags: ModelFlags,
) -> None:
    """LM-expand the catalogs: new nodes grounded on neighbours, validated, near-duplicates dropped."""
    check_out(out, "dir")
    from synth_empathy.graphs.expand import expand_catalog, write_expansion

    result = expand_catalog(flags.run_config(), personas, situations)
    paths = write_expansion(result, out)
    typer.echo(f"{len(result.personas)} personas, {len(result.situations)} situations kept; dropped {result.dropped}"
               f" -> {', '.join(map(str, paths)) or 'nothing written'}")


@graph_app.command("import")
@handles_errors
def graph_import(
    file: Annotated[Path, typer.Argument(help="ED CSV, ESConv JSON, chat JSON/JSONL, situations JSONL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for scenarios/imported.yaml and reference dialogues.")],
    fmt: Annotated[str | None, typer.Option("--format", help="Skip detection: ed_csv|esconv|chat|situations.")] = None,
    license: Annotated[str, typer.Option(
        "--license", help="The dataset's licence (e.g. CC-BY-NC-4.0); the data card of a run seeded from it states "
                          "it.")] = "unknown",
    language: Annotated[str, typer.Option("--language", help="What its dialogues are written in (default en).")] = "en",
    pii: PiiOpt = "report",
    config: ConfigOpt = None,
) -> None:
    """Turn a dataset into scenario nodes and reference dialogues for augmentation."""
    check_out(out, "dir")
    from synth_empathy.corpus.importers import read_dataset, write_import
    from synth_empathy.filters.pii import check_mode

    cfg = load_config(config)
    mode = check_mode(pii)
    report = write_import(read_dataset(file, fmt, license=license, language=language), out,
                          scenarios_dir=cfg.scenarios_dir, pii=mode)
    typer.echo(json.dumps({k: report[k] for k in report if k != "bad_rows"}, indent=2))
    if license == "unknown":
        typer.echo(f"no --license given: the card of a run seeded from {file.name} will say its licence is unknown",
                   err=True)
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


def _counter(total: int, what: str):
    def tick(i: int) -> None:
        typer.echo(f"[{i + 1}/{total}] {what}", err=True)

    return tick


@app.command("filter")
@handles_errors
@model_flags()
def filter_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or ED CSV / ESConv JSON / chat JSON(L).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (same layout as generate).")],
    sweep: Annotated[bool, typer.Option("--sweep", help="Print kept counts over a grid of thresholds.")] = False,
    select: Annotated[float | None, typer.Option(
        "--select", help="Also write the Efficient-Empathy split for threshold T (scores > T).")] = None,
    batch: BatchOpt = False,
    batch_poll: BatchPollOpt = 30.0,
    dry_run: DryRunOpt = False,
    language: Annotated[str | None, typer.Option(
        "--language", help="What an imported corpus is written in, for the language check (default en).")] = None,
    source_license: Annotated[str, typer.Option(
        "--source-license", help="An imported corpus's licence, which the data card states.")] = "unknown",
    *,
    flags: ModelFlags,
) -> None:
    """Rules, near-duplicate removal and the judge over an existing corpus."""
    check_out(out, "dir")
    from synth_empathy.run.corpus_filter import format_sweep, run_filter

    cfg = flags.run_config(**({"run": {"language": language_setting(language)}} if language is not None else {}))
    if dry_run:
        from synth_empathy.run.dry_run import estimate_filter

        typer.echo(estimate_filter(cfg, source, batch_price=batch).table())
        return
    manifest, table = run_filter(cfg, source, out, select=select, batch=batch, batch_poll_s=batch_poll,
                                 source_license=source_license)
    (out / "sweep.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    if sweep:
        typer.echo(format_sweep(table))
    c = manifest.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['planned']} -> {out}")
    _say_caveat(manifest)


@app.command("dedup")
@handles_errors
def dedup_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or an importable dataset.")],
    out: Annotated[Path, typer.Option("--out", help="The records kept (an outside file's own lines or rows).")],
    threshold: Annotated[float | None, typer.Option("--threshold", help="Jaccard threshold (default 0.8).")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Near-duplicate removal alone; the duplicates go to OUT's sibling .duplicates.jsonl. An outside dataset
    comes back as it was (the kept lines byte for byte, or the kept rows / list items), its duplicates keyed by
    its own ids; our own dialogue JSONL comes back as dialogues."""
    check_out(out, "file")
    from synth_empathy.corpus.records import is_outside

    cfg = load_config(config, {"dedup": {"threshold": threshold}} if threshold is not None else {})
    dup_path, bad_path = out.with_name(out.stem + ".duplicates.jsonl"), out.with_name(out.stem + ".bad_rows.jsonl")
    with _writing([out, dup_path, bad_path], [source], overwrite):
        if is_outside(source):
            from synth_empathy.run.outside import dedup_outside

            kept, dropped = dedup_outside(source, cfg.dedup, out, dup_path, bad_path)
        else:
            kept, dropped = _dedup_ours(source, cfg, out, dup_path, bad_path)
    typer.echo(f"{kept} kept, {dropped} duplicates -> {out}, {dup_path}")


def _dedup_ours(source: Path, cfg: RunConfig, out: Path, dup_path: Path, bad_path: Path) -> tuple[int, int]:
    from synth_empathy.corpus.read import read_any_dialogues
    from synth_empathy.filters.dedup import dedup_dialogues

    dialogues = read_any_dialogues(source, bad_rows_to=bad_path)
    kept, dropped = dedup_dialogues(dialogues, cfg.dedup)
    out.write_text("".join(d.model_dump_json(exclude_none=True) + "\n" for d in kept), encoding="utf-8")
    dup_path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in dropped), encoding="utf-8")
    return len(kept), len(dropped)


@app.command("decontaminate")
@handles_errors
def decontaminate_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder (dialogues.jsonl, manifest.json).")],
    against: Annotated[list[Path], typer.Option(
        "--against", help="A benchmark file in any import format (repeat the flag for several).")],
    ngram: Annotated[int, typer.Option("--ngram", help="Words in a shared n-gram that flags a dialogue.")] = 13,
    drop: Annotated[bool, typer.Option("--drop", help="Leave the flagged dialogues out of --out.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="A new corpus folder: the corpus (without the flagged ones with --drop), the report, a manifest "
                      "and card that record the check.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Benchmark contamination: dialogues sharing a long n-gram or a near-duplicate MinHash signature with the
    given benchmark files (EmpatheticDialogues, ESConv, EQ-Bench, ...). Reports; writes only to --out."""
    if out is not None:
        check_out(out, "dir")
    from synth_empathy.run.decontaminate import REPORT_FILE, decontaminate

    report = decontaminate(corpus, against, load_config(config), ngram, drop=drop, out=out)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    checked, found = report["checked"], report["found"]
    typer.echo(f"checked {checked['dialogues_checked']} dialogues against "
               + ", ".join(f"{f['path']} ({f['dialogues']} dialogues)" for f in checked["against"]))
    typer.echo(f"{found['dialogues']} flagged: {found['ngram_overlap']} share a {ngram}-gram, "
               f"{found['near_duplicate']} near duplicates (Jaccard >= {checked['threshold']})"
               + (f"; {found['dropped']} dropped" if drop else ""))
    for item in report["flagged"][:10]:
        typer.echo(f"  {item['id']}: {', '.join(item['reasons'])} "
                   f"({item['ngram_item'] or item['near_item']})")
    if out is not None:
        typer.echo(f"-> {out} (report in {out / REPORT_FILE})")


@app.command("judge")
@handles_errors
@model_flags()
def judge_cmd(
    source: Annotated[Path, typer.Argument(help="Our JSONL, or an importable dataset.")],
    out: Annotated[Path, typer.Option(
        "--out", help="Our JSONL: {id, scores} (or {id, error}) lines. An outside file: the records kept, as given.")],
    batch: BatchOpt = False,
    batch_poll: BatchPollOpt = 30.0,
    overwrite: OverwriteOpt = False,
    *,
    flags: ModelFlags,
) -> None:
    """Scores alone: sensibility, rationality, EPITOME levels, failure flags. With --batch the batch id lives in
    OUT's sibling .batch.json, so a rerun after a kill resumes the same batch. On an outside dataset OUT gets the
    records that meet the keep thresholds as the input holds them, and OUT's sibling .scores.jsonl one
    {id, record, kept, scores, reasons} line per record, keyed by the input's own ids."""
    check_out(out, "file")
    from synth_empathy.corpus.read import report_bad_rows
    from synth_empathy.corpus.records import import_records, need_dialogues
    from synth_empathy.run.corpus_filter import judge_all
    from synth_empathy.schema import Dialogue

    cfg = flags.run_config()
    bad_path = out.with_name(out.stem + ".bad_rows.jsonl")
    scores_path = out.with_name(out.stem + ".scores.jsonl")
    with _writing([out, bad_path, scores_path], [source], overwrite):
        records, dialogues = import_records(source)
        report_bad_rows(source, records.bad_rows, bad_path)
        need_dialogues(records, len(dialogues))
        outside = records.fmt != "synth"
        if outside:
            from synth_empathy.run.outside import check_suffix

            check_suffix(records, out)
        if batch:
            from synth_empathy.run.batch_judge import judge_by_batch

            outcomes = judge_by_batch(dialogues, cfg, out.with_name(out.stem + ".batch.json"), poll_s=batch_poll,
                                      on_status=_batch_status)
        else:
            outcomes = judge_all(dialogues, cfg, on_done=_counter(len(dialogues), "judged"))
        if outside:
            from synth_empathy.run.corpus_filter import keep_by_scores
            from synth_empathy.run.outside import write_outside

            kept_count = write_outside(records, *keep_by_scores(outcomes, cfg), out, scores_path)
        else:
            with open(out, "w", encoding="utf-8") as f:
                for o in outcomes:
                    rec = {"id": o.id, "scores": o.scores.model_dump()} if isinstance(o, Dialogue) else {
                        "id": o.id, "error": o.detail}
                    f.write(json.dumps(rec) + "\n")
    failed = sum(not isinstance(o, Dialogue) for o in outcomes)
    if outside:
        typer.echo(f"{len(outcomes) - failed} scored, {failed} failed; {kept_count} records meet the keep thresholds "
                   f"-> {out} (as the input holds them), scores and reasons by the input's ids -> {scores_path}")
    else:
        typer.echo(f"{len(outcomes) - failed} scored, {failed} failed -> {out}")


def _batch_status(status: str, counts: dict) -> None:
    typer.echo(f"batch {status}: {counts.get('completed', 0)} of {counts.get('total', 0)} answered", err=True)


@app.command("judge-eval")
@handles_errors
@model_flags()
def judge_eval_cmd(
    files: Annotated[list[Path], typer.Argument(help="EPITOME CSVs (one per mechanism) or JSONL files.")],
    fmt: Annotated[str, typer.Option("--format", help="epitome, jsonl, or labels (DIR/labels.jsonl).")] = "epitome",
    mechanism: Annotated[str | None, typer.Option("--mechanism", help="er, ip or ex (else from the name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    *,
    flags: ModelFlags,
) -> None:
    """Agreement of the judge with human labels: accuracy, Cohen's kappa, Spearman per mechanism.
    --format labels reads DIR/labels.jsonl from `review` with the recorded judge scores of DIR (no model call):
    the same figures as `calibrate DIR`."""
    if fmt == "labels":
        from synth_empathy.publish.human_agreement import format_text
        from synth_empathy.review.calibrate import human_agreement_for
        from synth_empathy.review.labels import read_labels

        for f in files:
            if not f.is_file():
                raise UserError(f"{f} does not exist")
            figures = human_agreement_for(f.parent, labels=read_labels(f))
            typer.echo(json.dumps(figures, indent=2) if as_json else f"{f}\n{format_text(figures)}")
        return
    from synth_empathy.filters.judge_eval import evaluate_judge, read_labelled
    from synth_empathy.lm import model_label

    cfg = flags.run_config()
    label = model_label(cfg.judge_model())
    pairs = [p for f in files for p in read_labelled(f, fmt, mechanism)]
    results = evaluate_judge(cfg, pairs, on_pair=_counter(len(pairs), "judged"))
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
@model_flags()
def optimize_cmd(
    program: Annotated[str, typer.Option("--program", help="supporter, seeker or critique.")],
    trainset: Annotated[Path, typer.Option("--trainset", help="Our JSONL or an importable dataset.")],
    out: Annotated[Path, typer.Option("--out", help="FILE.json, or a folder (gets <program>.json).")],
    optimizer: Annotated[str, typer.Option("--optimizer", help="bootstrap, mipro or gepa.")] = "bootstrap",
    budget: Annotated[int, typer.Option("--budget", help="Demos / candidates / trials cap.")] = 2,
    limit: Annotated[int, typer.Option("--limit", help="At most this many training examples.")] = 8,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="Human labels (default: labels.jsonl next to the trainset, if there is one).")] = None,
    *,
    flags: ModelFlags,
) -> None:
    """Compile a program with a DSPy optimizer, the judge as metric; `generate --programs DIR` loads it.
    Human labels from `review` override the judge where they exist (see optimize.trainset)."""
    check_out(out, "any")
    from synth_empathy.optimize import optimize_program

    path, examples, human = optimize_program(flags.run_config(), program, optimizer, trainset, out, budget, limit,
                                             labels)
    typer.echo(f"{program} optimized with {optimizer} on {examples} examples"
               + (f" ({human} human labels)" if human else "") + f" -> {path}")


@app.command("export")
@handles_errors
def export_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder (dialogues.jsonl, manifest.json).")],
    fmt: Annotated[str, typer.Option("--format", help="openai, sharegpt, hf, prompt-completion or dpo.")],
    out: Annotated[Path, typer.Option("--out", help="Output file (openai, sharegpt) or folder (hf).")],
    min_sensibility: Annotated[float | None, typer.Option("--min-sensibility")] = None,
    min_rationality: Annotated[float | None, typer.Option("--min-rationality")] = None,
    emotion: Annotated[list[str] | None, typer.Option("--emotion", help="Keep these emotions (repeatable).")] = None,
    problem_type: Annotated[list[str] | None, typer.Option("--problem-type", help="Repeatable.")] = None,
    strategy: Annotated[list[str] | None, typer.Option("--strategy", help="Repeatable.")] = None,
    targets: Annotated[str, typer.Option(
        "--targets", help="openai, prompt-completion: train on all|last supporter turns.")] = "all",
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    split: Annotated[str | None, typer.Option("--split", help="hf: train,validation,test e.g. 0.8,0.1,0.1.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="hf: seed of the split.")] = 0,
    push: Annotated[str | None, typer.Option("--push", help="hf: publish to this Hub repo (HF_TOKEN).")] = None,
    private: Annotated[bool, typer.Option("--private", help="hf: push as a private repo.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    pii: PiiOpt = "report",
    min_margin: Annotated[float | None, typer.Option(
        "--min-margin", help="dpo: keep pairs whose critique margin is known and at least this (-6..6).")] = None,
) -> None:
    """Convert a corpus for trainers: OpenAI chat fine-tuning JSONL, ShareGPT, a Hugging Face dataset, TRL
    prompt-completion rows (one per supporter reply), or DPO pairs."""
    check_out(out, "dir" if fmt == "hf" else "file")
    from synth_empathy.filters.pii import check_mode
    from synth_empathy.publish.exports import build_selection, export_corpus

    mode = check_mode(pii)
    selection = build_selection(min_sensibility=min_sensibility, min_rationality=min_rationality, emotions=emotion,
                                problem_types=problem_type, strategies=strategy)
    result = export_corpus(corpus, fmt, out, selection=selection, targets=targets, system_prompt=system_prompt,
                           split=split, seed=seed, push=push, private=private, overwrite=overwrite, pii=mode,
                           min_margin=min_margin)
    typer.echo(result.summary())
    if result.pii is not None:
        typer.echo(result.pii.summary())


@app.command("report")
@handles_errors
def report_cmd(
    corpus: Annotated[Path, typer.Argument(help="A corpus folder.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    sample: Annotated[int, typer.Option("--sample", help="Dialogues shown in the browsable sample.")] = 24,
) -> None:
    """A self-contained HTML report with plots and a sample of dialogues; opens offline."""
    check_out(out, "file")
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


@app.command("review")
@handles_errors
def review_cmd(
    corpus: Annotated[Path, typer.Argument(help="An output folder (dialogues.jsonl, rejected.jsonl).")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8765,
    reviewer: Annotated[str | None, typer.Option(
        "--reviewer", help="Your name on the labels (default: your login).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random slice of the review order.")] = 0,
) -> None:
    """A local review app: rate, keep/reject and edit dialogues; labels go to DIR/labels.jsonl."""
    import getpass

    from synth_empathy.review.app import create_app, serve_app

    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    name = (reviewer if reviewer is not None else getpass.getuser()).strip()
    if not name:
        raise UserError("--reviewer must not be empty")
    review_app = create_app(corpus, name, seed)
    typer.echo(f"reviewing {corpus} as {name} on http://127.0.0.1:{port}/ (Ctrl+C stops; labels -> "
               f"{corpus / 'labels.jsonl'})")
    serve_app(review_app, port)


@app.command("calibrate")
@handles_errors
def calibrate_cmd(
    corpus: Annotated[Path, typer.Argument(help="An output folder with labels.jsonl (from `review`).")],
    write_config: Annotated[Path | None, typer.Option(
        "--write-config", help="Write the proposed keep thresholds into this TOML/YAML config.")] = None,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples for the intervals.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Judge vs human labels: kappa, Spearman, keep accuracy, inter-reviewer agreement, proposed thresholds."""
    from synth_empathy.publish.card import write_card
    from synth_empathy.publish.human_agreement import format_text
    from synth_empathy.review.calibrate import human_agreement_for, record_agreement, write_thresholds

    if resamples < 0:
        raise UserError(f"--resamples must be 0 or more, not {resamples}")
    figures = human_agreement_for(corpus, resamples=resamples, seed=seed)
    manifest = record_agreement(corpus, figures)
    if manifest is not None:
        write_card(corpus, manifest)
    proposed = figures["proposed_thresholds"]
    if write_config is not None:
        if proposed is None:
            raise UserError("no labelled dialogue carries judge scores, so there are no thresholds to write")
        write_thresholds(write_config, proposed["min_sensibility"], proposed["min_rationality"])
    typer.echo(json.dumps(figures, indent=2) if as_json else format_text(figures))
    if manifest is None:
        typer.echo(f"{corpus} has no manifest.json, so the figures were not recorded", err=True)
    if write_config is not None:
        typer.echo(f"keep thresholds -> {write_config} [judge] min_sensibility = {proposed['min_sensibility']:g}, "
                   f"min_rationality = {proposed['min_rationality']:g}", err=True)


@app.command("eval")
@handles_errors
@model_flags()
def eval_cmd(
    n: Annotated[int, typer.Option("-n", "--n", help="Held-out seeds to play.")] = 10,
    out: Annotated[Path, typer.Option("--out", help="Folder for eval.json and episodes.jsonl.")] = Path("outputs/eval"),
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Skip the judge: the intensity reward alone.")] = False,
    overwrite: OverwriteOpt = False,
    *,
    flags: ModelFlags,
) -> None:
    """A model plays the supporter against the live seeker on held-out seeds: mean intensity drop, judge scores and
    failure flags per emotion. --backend, --model, --api-base and --api-key-env name the model under test; the
    seeker, and the judge unless --judge-model names one, run on the --config file's [model] (default: embedded)."""
    check_out(out, "dir")
    from synth_empathy.train.evaluate import check_out_dir, run_eval, write_eval

    check_out_dir(out, overwrite)
    supporter = flags.run_config().model  # the flags, checked as every command checks them
    seeker_config = load_config(flags.config, {"judge": {"model": flags.judge_model}} if flags.judge_model else {},
                                flags=FLAG_SETTINGS)

    def tick(index: int, episode) -> None:
        typer.echo(f"[{index + 1}/{n}] {episode.dialogue.seed.emotion}: intensity {episode.dialogue.seed.intensity} "
                   f"-> {episode.final_intensity}, return {episode.total_reward:.2f}, {episode.dialogue.ending}",
                   err=True)

    result = run_eval(seeker_config, supporter, n, judge=not no_judge, on_episode=tick)
    path = write_eval(result, out, overwrite=overwrite)
    typer.echo(result.table())
    typer.echo(f"-> {path}")


def main() -> None:
    app(prog_name="synth-empathy")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
