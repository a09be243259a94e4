"""Bad-input sweep (issue 12): every command on every bad kind of input exits 2 with one sentence, no traceback.

Each fixture is built on demand in tmp_path by a builder named in FIXTURES; each case is one line of CASES:
an id and an argv template whose {names} are fixtures. A new bad input is one line (plus a builder if new).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CATALOG
from corpora import make_corpus
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.userfiles import MAX_LINE_BYTES

LATIN1 = "caf\xe9 \xff".encode("latin-1")  # not UTF-8
NESTED = "[" * 100_000 + "]" * 100_000  # deeper than Python's recursion limit
EPITOME_HEADER = "sp_id,rp_id,seeker_post,response_post,level\n"
DEAD_ENDPOINT = "http://127.0.0.1:9/v1"  # a case that wrongly reaches the model fails fast, not slowly


def _catalog_copy(tmp: Path) -> Path:
    if not (tmp / "catalog").exists():
        shutil.copytree(CATALOG, tmp / "catalog")
    return tmp / "catalog"


def _config(tmp: Path, name: str, body: str, catalog: Path = CATALOG, suffix: str = ".toml") -> Path:
    path = tmp / f"{name}{suffix}"
    path.write_text(f'personas_dir = "{catalog / "personas"}"\nscenarios_dir = "{catalog / "scenarios"}"\n{body}',
                    encoding="utf-8")
    return path


def _corpus(tmp: Path, name: str, corrupt: Callable[[Path], None] | None = None) -> Path:
    out = make_corpus(tmp / name, n=6, rejected=2)
    if corrupt:
        corrupt(out)
    return out


def _write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def _catalog_with(tmp: Path, rel: str, data: bytes | None) -> Path:
    cat = _catalog_copy(tmp)
    target = cat / rel
    if data is None:
        target.mkdir(parents=True)
    else:
        target.write_bytes(data)
    return _config(tmp, "catalog_" + rel.replace("/", "_"), "", catalog=cat)


def _programs(tmp: Path, name: str, data: bytes | str) -> Path:
    _write(tmp, f"{name}/supporter.json", data)
    return tmp / name


def _resume_out(tmp: Path, lines: str) -> Path:
    """An earlier run's --out with the manifest of `cfg_run` and `lines` in dialogues.jsonl."""
    from synth_empathy.config import load_config
    from synth_empathy.corpus.manifest import write_manifest
    from synth_empathy.corpus.store import KEPT_FILE
    from synth_empathy.schema import Manifest

    cfg = load_config(FIXTURES["cfg_run"](tmp))
    out = tmp / f"resume{abs(hash(lines))}"
    out.mkdir()
    write_manifest(out, Manifest(package_version="0", config=cfg.public_dict(), config_fingerprint=cfg.fingerprint(),
                                 versions={}, models={}, counts={"planned": 1, "kept": 0, "rejected": 0},
                                 rejection_reasons={}, usage={}, timings={}, created="2025-01-01T00:00:00+00:00"))
    (out / KEPT_FILE).write_text(lines, encoding="utf-8")
    return out


def _saved_with_lm() -> str:
    """A real saved supporter whose draft predictor brings its own model and host."""
    from synth_empathy.programs import Supporter

    state = {name: p.dump_state() for name, p in Supporter().named_predictors()}
    state["draft"]["lm"] = {"model": "openai/other", "api_base": "http://elsewhere.example/v1"}
    return json.dumps(state)


def _manifest_field(out: Path) -> None:
    data = json.loads((out / "manifest.json").read_text())
    data["counts"] = "many"
    (out / "manifest.json").write_text(json.dumps(data))


FIXTURES: dict[str, Callable[[Path], Path]] = {
    "cfg_run": lambda t: _config(t, "run", f'[model]\nbackend = "openai"\nmodel = "m"\napi_base = "{DEAD_ENDPOINT}"\n'
                                          "retries = 0\n"),
    "cfg_latin1": lambda t: _write(t, "latin1.toml", LATIN1),
    "cfg_latin1_yaml": lambda t: _write(t, "latin1.yaml", LATIN1),
    "cfg_timeout_inf": lambda t: _config(t, "inf", "[model]\ntimeout_s = inf\n"),
    "cfg_timeout_nan": lambda t: _config(t, "nan", "[model]\ntimeout_s = nan\n"),
    "cfg_backoff_inf": lambda t: _config(t, "binf", "[model]\nbackoff_s = inf\n"),
    "cfg_n_negative": lambda t: _config(t, "nneg", "n = -5\n"),
    "cfg_n_huge": lambda t: _config(t, "nhuge", "n = 1000000000000\n"),
    "cfg_n_text": lambda t: _config(t, "ntext", 'n = "ten"\n'),
    "cfg_n_float": lambda t: _config(t, "nfloat", "n = 2.5\n"),
    "cfg_emotion_typo": lambda t: _config(t, "etypo", "[sampler]\nemotion_weights = { anxiuos = 2 }\n"),
    "cfg_problem_typo": lambda t: _config(t, "ptypo", "[sampler]\nproblem_type_weights = { wrok = 2 }\n"),
    "cfg_catalog_latin1": lambda t: _catalog_with(t, "personas/extra.yaml", LATIN1),
    "cfg_catalog_folder": lambda t: _catalog_with(t, "scenarios/more.yaml", None),
    "corpus_kept_latin1": lambda t: _corpus(t, "c_kept", lambda o: (o / "dialogues.jsonl").write_bytes(LATIN1)),
    "corpus_rejected_latin1": lambda t: _corpus(t, "c_rej", lambda o: (o / "rejected.jsonl").write_bytes(LATIN1)),
    "corpus_rejected_junk": lambda t: _corpus(t, "c_junk", lambda o: (o / "rejected.jsonl").write_text("junk\n[1]\n")),
    "corpus_manifest_latin1": lambda t: _corpus(t, "c_man", lambda o: (o / "manifest.json").write_bytes(LATIN1)),
    "corpus_manifest_type": lambda t: _corpus(t, "c_mtype", _manifest_field),
    "corpus_kept_nested": lambda t: _corpus(t, "c_nest", lambda o: (o / "dialogues.jsonl").write_text(NESTED + "\n")),
    "corpus_kept_long_line": lambda t: _corpus(
        t, "c_long", lambda o: (o / "dialogues.jsonl").write_text('{"x": "' + "a" * MAX_LINE_BYTES + '"}\n')),
    "corpus_ok": lambda t: _corpus(t, "c_ok"),
    "nested_jsonl": lambda t: _write(t, "nested.jsonl", NESTED + "\n"),
    "nested_json": lambda t: _write(t, "nested.json", NESTED),
    "long_line_jsonl": lambda t: _write(t, "long.jsonl", '{"x": "' + "a" * MAX_LINE_BYTES + '"}\n'),
    "latin1_jsonl": lambda t: _write(t, "latin1.jsonl", LATIN1 + b"\n"),
    "no_usable_rows": lambda t: _write(t, "useless.jsonl", '{"foo": 1}\n{"bar": 2}\n'),
    "epitome_latin1": lambda t: _write(t, "er_latin1.csv", EPITOME_HEADER.encode() + b"1,2," + LATIN1 + b",x,1\n"),
    "epitome_huge_field": lambda t: _write(t, "er_huge.csv", EPITOME_HEADER + '1,2,"' + "a" * 200_000 + '",x,1\n'),
    "programs_malformed": lambda t: _programs(t, "prog_bad", "{not json"),
    "programs_latin1": lambda t: _programs(t, "prog_latin1", LATIN1),
    "programs_nested": lambda t: _programs(t, "prog_nested", NESTED),
    "programs_lm": lambda t: _programs(t, "prog_lm", _saved_with_lm()),
    "not_gguf": lambda t: _write(t, "model.gguf", "this is not a model\n"),
    "a_file": lambda t: _write(t, "plain_file", "x"),
    "under_file": lambda t: _write(t, "parent_file", "x") / "out",
    "read_only": lambda t: Path("/sys/synth-empathy-sweep/out"),
    # a bad line before the last (the last is the torn-tail repair's to judge)
    "resume_junk": lambda t: _resume_out(t, 'this is not json\n{"id": "d0"}\n'),
    "resume_not_object": lambda t: _resume_out(t, '[1, 2]\n{"id": "d0"}\n'),
    "resume_no_id": lambda t: _resume_out(t, '{"turns": []}\n'),
    "resume_nested": lambda t: _resume_out(t, NESTED + "\n"),
}

GEN = "generate -n 1 --config {cfg_run}"


def _out_cases(kinds: tuple[str, ...], commands: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every command with --out set to each unusable kind of path."""
    def name(cmd: str) -> str:
        words = cmd.split()
        fmt = [words[words.index("--format") + 1]] if "--format" in words else []
        return "-".join((words[:2] if words[0] == "graph" else words[:1]) + fmt)

    return [(f"{name(cmd)}-out-{kind}", f"{cmd} --out {{{kind}}}") for kind in kinds for cmd in commands]
CASES: list[tuple[str, str]] = [
    # non-UTF-8 anywhere
    ("generate-config-latin1", "generate -n 1 --config {cfg_latin1} --out {tmp}/o"),
    ("generate-config-yaml-latin1", "generate -n 1 --config {cfg_latin1_yaml} --out {tmp}/o"),
    ("generate-catalog-latin1", "generate -n 1 --config {cfg_catalog_latin1} --out {tmp}/o"),
    ("graph-stats-catalog-latin1", "graph stats --config {cfg_catalog_latin1}"),
    ("stats-kept-latin1", "stats {corpus_kept_latin1}"),
    ("stats-rejected-latin1", "stats {corpus_rejected_latin1}"),
    ("stats-manifest-latin1", "stats {corpus_manifest_latin1}"),
    ("report-kept-latin1", "report {corpus_kept_latin1} --out {tmp}/r.html"),
    ("report-rejected-latin1", "report {corpus_rejected_latin1} --out {tmp}/r.html"),
    ("report-manifest-latin1", "report {corpus_manifest_latin1} --out {tmp}/r.html"),
    ("export-kept-latin1", "export {corpus_kept_latin1} --format openai --out {tmp}/e.jsonl"),
    ("export-rejected-latin1", "export {corpus_rejected_latin1} --format hf --out {tmp}/hf"),
    ("export-manifest-latin1", "export {corpus_manifest_latin1} --format openai --out {tmp}/e.jsonl"),
    ("judge-eval-csv-latin1", "judge-eval --mechanism er {epitome_latin1}"),
    ("judge-eval-jsonl-latin1", "judge-eval --format jsonl {latin1_jsonl}"),
    ("dedup-latin1", "dedup {latin1_jsonl} --out {tmp}/d.jsonl"),
    ("programs-latin1", GEN + " --out {tmp}/o --programs {programs_latin1}"),
    # wrong types, junk, odd files
    ("stats-manifest-type", "stats {corpus_manifest_type}"),
    ("report-manifest-type", "report {corpus_manifest_type} --out {tmp}/r.html"),
    ("export-manifest-type", "export {corpus_manifest_type} --format openai --out {tmp}/e.jsonl"),
    ("stats-rejected-junk", "stats {corpus_rejected_junk}"),
    ("generate-catalog-folder-named-yaml", "generate -n 1 --config {cfg_catalog_folder} --out {tmp}/o"),
    ("judge-eval-csv-field-limit", "judge-eval --mechanism er {epitome_huge_field}"),
    ("graph-import-no-usable-row", "graph import {no_usable_rows} --out {tmp}/gi"),
    # deeply nested JSON and unbounded lines
    ("dedup-nested", "dedup {nested_jsonl} --out {tmp}/d.jsonl"),
    ("dedup-nested-json", "dedup {nested_json} --out {tmp}/d.jsonl"),
    ("filter-nested", "filter {nested_jsonl} --out {tmp}/f"),
    ("judge-nested", "judge {nested_jsonl} --out {tmp}/j.jsonl"),
    ("graph-import-nested", "graph import {nested_jsonl} --out {tmp}/gi"),
    ("graph-import-nested-json", "graph import {nested_json} --out {tmp}/gi"),
    ("stats-kept-nested", "stats {corpus_kept_nested}"),
    ("dedup-long-line", "dedup {long_line_jsonl} --out {tmp}/d.jsonl"),
    ("graph-import-long-line", "graph import {long_line_jsonl} --out {tmp}/gi"),
    ("stats-long-line", "stats {corpus_kept_long_line}"),
    # resume over an --out with bad lines
    ("resume-junk-line", GEN + " --out {resume_junk} --resume"),
    ("resume-not-an-object", GEN + " --out {resume_not_object} --resume"),
    ("resume-record-without-id", GEN + " --out {resume_no_id} --resume"),
    ("resume-nested", GEN + " --out {resume_nested} --resume"),
    # config values
    ("config-timeout-inf", "generate -n 1 --config {cfg_timeout_inf} --out {tmp}/o"),
    ("config-timeout-nan", "generate -n 1 --config {cfg_timeout_nan} --out {tmp}/o"),
    ("config-backoff-inf", "generate -n 1 --config {cfg_backoff_inf} --out {tmp}/o"),
    ("config-n-negative", "generate --config {cfg_n_negative} --out {tmp}/o"),
    ("config-n-huge", "generate --config {cfg_n_huge} --out {tmp}/o"),
    ("config-n-text", "generate --config {cfg_n_text} --out {tmp}/o"),
    ("config-n-float", "generate --config {cfg_n_float} --out {tmp}/o"),
    ("config-emotion-typo", "graph stats --config {cfg_emotion_typo}"),
    ("config-problem-type-typo", "generate -n 1 --config {cfg_problem_typo} --out {tmp}/o"),
    # bounds
    ("generate-n-huge", "generate -n 1000000000000 --out {tmp}/o"),
    ("graph-stats-plan-huge", "graph stats --plan 1000000000"),
    ("graph-stats-plan-negative", "graph stats --plan -5"),
    # programs and models
    ("programs-malformed", GEN + " --out {tmp}/o --programs {programs_malformed}"),
    ("programs-nested", GEN + " --out {tmp}/o --programs {programs_nested}"),
    ("programs-lm-entry", GEN + " --out {tmp}/o --programs {programs_lm}"),
    ("model-not-gguf", "generate -n 1 --out {tmp}/o --model {not_gguf}"),
    ("judge-model-not-gguf", "judge {corpus_ok}/dialogues.jsonl --out {tmp}/j.jsonl --model {not_gguf}"),
    ("api-key-env-is-a-key", "generate -n 1 --out {tmp}/o --backend openai --model m --api-key-env sk-abc123XYZsecret"),
    # an unusable --out, for every command that writes
    *_out_cases(("a_file", "under_file", "read_only"), (
        GEN, "filter {corpus_ok}/dialogues.jsonl", "graph import {corpus_ok}/dialogues.jsonl",
        "graph expand --personas 1 --situations 1", "export {corpus_ok} --format hf")),
    *_out_cases(("under_file", "read_only"), (
        "dedup {corpus_ok}/dialogues.jsonl", "judge {corpus_ok}/dialogues.jsonl", "export {corpus_ok} --format openai",
        "report {corpus_ok}", "graph export", "optimize --program supporter --trainset {corpus_ok}/dialogues.jsonl")),
]

runner = CliRunner()


def _argv(template: str, tmp: Path) -> list[str]:
    names = {part.split("}")[0] for part in template.split("{")[1:]}
    values = {name: str(tmp if name == "tmp" else FIXTURES[name](tmp)) for name in names}
    return template.format(**values).split()


@pytest.mark.parametrize(("case", "template"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_sentence_and_exit_2(case, template, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sweep-fake")
    result = runner.invoke(app, _argv(template, tmp_path))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].count(". ") <= 1 and len(errors[0]) < 600, errors[0]
