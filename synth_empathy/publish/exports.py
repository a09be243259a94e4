"""Convert a corpus (DIR/dialogues.jsonl) into training formats: OpenAI chat fine-tuning JSONL, ShareGPT, TRL
prompt-completion JSONL (one row per supporter reply), DPO preference pairs, and a Hugging Face dataset with
family-safe train/validation/test splits, optionally pushed to the Hub.

The supporter is the assistant and the seeker the user; every format is built from the chat rows of
`synth_empathy.publish.rows`, as the Python API's rows are. `export_corpus` is the one entry point that reads,
filters, writes and pushes.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_empathy.corpus.lock import LOCK, output_lock
from synth_empathy.corpus.outputs import (
    check_outputs,
    files_under,
    foreign_entries,
    has_marker,
    record_written,
    remove_written,
)
from synth_empathy.corpus.read import Corpus, read_corpus
from synth_empathy.corpus.store import CARD_FILE, KEPT_FILE, MANIFEST_FILE, REJECTED_FILE
from synth_empathy.errors import RunError, UserError, require_extra
from synth_empathy.filters.pii import PiiMode, PiiReport, pii_pass
from synth_empathy.publish.rows import (
    DEFAULT_SYSTEM_PROMPT,
    TARGETS,
    family,
    hf_features,
    hf_row,
    prompt_completion_rows,
    to_messages,
)
from synth_empathy.publish.stats import catalog_for, corpus_stats, count_summary
from synth_empathy.schema import EMOTIONS, STRATEGIES, Dialogue

if TYPE_CHECKING:
    from synth_empathy.graphs.catalog import Catalog

FORMATS = ("openai", "sharegpt", "hf", "prompt-completion", "dpo")
TARGETED = ("openai", "prompt-completion")  # the formats --targets applies to
SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
HF_TOKEN_ENV = "HF_TOKEN"
_SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


# ------------------------------------------------------------------ selection


@dataclass(frozen=True)
class ExportSelection:
    """Which dialogues an export keeps; an empty filter keeps all. A score minimum drops unscored dialogues."""

    min_sensibility: float | None = None
    min_rationality: float | None = None
    emotions: frozenset[str] = frozenset()
    problem_types: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()  # kept if any supporter turn uses one of them

    def accepts(self, d: Dialogue) -> bool:
        for minimum, metric in ((self.min_sensibility, "sensibility"), (self.min_rationality, "rationality")):
            if minimum is not None and (d.scores is None or getattr(d.scores, metric) < minimum):
                return False
        if self.emotions and d.seed.emotion not in self.emotions:
            return False
        if self.problem_types and d.seed.problem_type not in self.problem_types:
            return False
        return not self.strategies or any(t.strategy in self.strategies for t in d.turns if t.role == "supporter")

    def describe(self) -> str:
        parts = []
        if self.min_sensibility is not None:
            parts.append(f"sensibility >= {self.min_sensibility:g}")
        if self.min_rationality is not None:
            parts.append(f"rationality >= {self.min_rationality:g}")
        for name, values in (("emotion", self.emotions), ("problem type", self.problem_types),
                             ("strategy", self.strategies)):
            if values:
                parts.append(f"{name} in {{{', '.join(sorted(values))}}}")
        return "; ".join(parts) or "none"


def _names(values: Iterable[str] | str | None) -> list[str]:
    """Flag values as given: repeated flags, comma-separated lists, or both."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _identifier(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def build_selection(min_sensibility: float | None = None, min_rationality: float | None = None,
                 emotions: Iterable[str] | str | None = None, problem_types: Iterable[str] | str | None = None,
                 strategies: Iterable[str] | str | None = None) -> ExportSelection:
    """A validated filter from flag values; UserError names the first bad one.

    Emotions must be ED labels and strategies ESConv strategies ("reflection of feelings" is read as
    reflection_of_feelings); problem types are checked against the corpus's catalog when exporting.
    """
    for flag, value in (("--min-sensibility", min_sensibility), ("--min-rationality", min_rationality)):
        if value is not None and not 0 <= value <= 10:
            raise UserError(f"{flag} must be between 0 and 10, not {value:g}")
    emotion_set = {_identifier(e) for e in _names(emotions)}
    for e in sorted(emotion_set):
        if e not in EMOTIONS:
            raise UserError(f"--emotion '{e}' is not one of the 32 emotion labels ({', '.join(EMOTIONS)})")
    strategy_set = {_identifier(s) for s in _names(strategies)}
    for s in sorted(strategy_set):
        if s not in STRATEGIES:
            raise UserError(f"--strategy '{s}' is not an ESConv strategy ({', '.join(STRATEGIES)})")
    return ExportSelection(min_sensibility, min_rationality, frozenset(emotion_set),
                          frozenset(_identifier(p) for p in _names(problem_types)), frozenset(strategy_set))


def parse_split(text: str | Sequence[float] | None) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' (or 80,10,10) -> train/validation/test fractions; UserError unless three shares summing to 1."""
    if text is None:
        return DEFAULT_SPLIT
    try:
        parts = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise UserError(f"--split '{text}' must be three numbers for train,validation,test, like 0.8,0.1,0.1") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or parts[0] <= 0:
        raise UserError(f"--split '{text}' must be three shares >= 0 for train,validation,test with train > 0")
    total = sum(parts)
    if abs(total - 100) < 1e-6:
        parts = [p / 100 for p in parts]
    elif abs(total - 1) > 1e-6:
        raise UserError(f"--split '{text}' must add up to 1 (or 100), not {total:g}")
    return parts[0], parts[1], parts[2]


# ------------------------------------------------------------------ conversions


def to_openai(d: Dialogue, targets: str = "all", system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> dict[str, Any]:
    """One chat fine-tuning line. targets="last" trains on the final supporter turn only (weight 1, earlier
    assistant messages weight 0); "all" trains on every supporter turn, OpenAI's default without weights."""
    messages: list[dict[str, Any]] = to_messages(d, system_prompt)
    if targets == "last":
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        for i, m in enumerate(messages):
            if m["role"] == "assistant":
                m["weight"] = int(i == last)
    return {"messages": messages}


def to_sharegpt(d: Dialogue, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> dict[str, Any]:
    return {"id": d.id, "conversations": [{"from": _SHAREGPT_FROM[m["role"]], "value": m["content"]}
                                          for m in to_messages(d, system_prompt)]}


def split_by_family(dialogues: Sequence[Dialogue], ratios: Sequence[float] = DEFAULT_SPLIT,
                    seed: int = 0) -> dict[str, list[Dialogue]]:
    """Assign whole families to train/validation/test, as close to `ratios` as whole families allow.

    Families are shuffled (seeded), then placed largest first, each into the split furthest below its target
    size; a split with ratio 0 gets nothing. Deterministic for (dialogues, ratios, seed).
    """
    groups: dict[str, list[Dialogue]] = {}
    for d in dialogues:
        groups.setdefault(family(d), []).append(d)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    names.sort(key=lambda f: -len(groups[f]))  # stable: equal sizes keep the shuffled order
    targets = [r * len(dialogues) for r in ratios]
    sizes = [0] * len(SPLITS)
    out: dict[str, list[Dialogue]] = {name: [] for name in SPLITS}
    open_splits = [i for i, r in enumerate(ratios) if r > 0]
    for f in names:
        i = max(open_splits, key=lambda j: (targets[j] - sizes[j], -j))
        out[SPLITS[i]].extend(groups[f])
        sizes[i] += len(groups[f])
    return out


# ------------------------------------------------------------------ writing


@dataclass
class ExportResult:
    """What an export wrote; `summary()` is the line the CLI prints."""

    format: str
    out: Path
    dialogues: int
    filtered_out: int = 0
    without_reply: int = 0  # dialogues with no supporter turn, which no format can train on
    splits: dict[str, int] = field(default_factory=dict)
    families: dict[str, int] = field(default_factory=dict)
    pushed_to: str | None = None
    pii: PiiReport | None = None  # the personal-data pass over what was exported (None: --pii off)
    pairs: dict[str, int] = field(default_factory=dict)  # dpo: preference pairs written, by source
    edits_skipped: int = 0  # dpo: review edits whose dialogue or turn no longer matches
    with_margin: int = 0  # dpo: pairs written with a known margin
    below_margin: int = 0  # dpo: pairs left out by --min-margin
    rows: int = 0  # prompt-completion: one row per supporter reply
    targets: str = "all"

    def summary(self) -> str:
        if self.format == "dpo":
            notes = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in self.pairs.items())
            notes += f"; {self.with_margin:,} with a critique margin"
            if self.below_margin:
                notes += f"; {self.below_margin:,} below --min-margin or without a margin left out"
            if self.edits_skipped:
                notes += f"; {self.edits_skipped:,} stale edits skipped"
            return f"exported {sum(self.pairs.values()):,} preference pairs to {self.out} (dpo: {notes})"
        if self.format == "prompt-completion":
            line = (f"exported {self.rows:,} supporter replies of {self.dialogues:,} dialogues to {self.out} "
                    f"(prompt-completion{', the last reply of each' if self.targets == 'last' else ''})")
        else:
            line = f"exported {self.dialogues:,} dialogues to {self.out} ({self.format})"
        dropped = []
        if self.filtered_out:
            dropped.append(f"{self.filtered_out:,} filtered out")
        if self.without_reply:
            dropped.append(f"{self.without_reply:,} without a supporter turn skipped")
        if dropped:
            line += "; " + ", ".join(dropped)
        if self.splits:
            line += "; splits " + ", ".join(f"{k} {v:,} ({self.families[k]:,} families)"
                                            for k, v in self.splits.items())
        if self.pushed_to:
            line += f"; pushed to {self.pushed_to}"
        if self.format == "openai" and self.targets == "last":
            # The weight field is OpenAI's; a TRL trainer reads `messages` alone and trains on every reply.
            line += ("; the weight field is read by OpenAI fine-tuning only: for TRL use --format prompt-completion "
                     "--targets last")
        return line


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]], as_array: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        if as_array:
            json.dump(list(records), f, ensure_ascii=False, indent=1)
            f.write("\n")
        else:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


HF_NAMES = (CARD_FILE, "dataset_dict.json", "data", *SPLITS)  # what an hf export writes at the top of its folder


def _check_out(out: Path, corpus_dir: Path, fmt: str, overwrite: bool) -> None:
    corpus_files = (corpus_dir / name for name in (KEPT_FILE, REJECTED_FILE, MANIFEST_FILE, CARD_FILE))
    check_outputs([out], [corpus_dir, *corpus_files], overwrite=overwrite)
    if not out.exists():
        return
    if fmt == "hf":
        if not out.is_dir():
            raise UserError(f"--out {out} is a file; the hf export needs a folder")
        if any(p.name != LOCK for p in out.iterdir()):
            if not overwrite:
                raise UserError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
            if not has_marker(out):
                raise UserError(f"--out {out} is not empty and holds no earlier hf export that recorded its files, so "
                                f"--overwrite will not delete anything there; choose a new folder")
            clash = [name for name in foreign_entries(out) if name in HF_NAMES]
            if clash:
                raise UserError(f"--out {out} holds {clash[0]}, which the earlier export did not write; "
                                f"--overwrite replaces only its own files, so choose a new folder")
    elif out.is_dir():
        raise UserError(f"--out {out} is a folder; the {fmt} export writes one JSONL file")


def _check_problem_types(wanted: frozenset[str], corpus_problem_types: set[str], catalog: Catalog | None) -> None:
    known = {p.id for p in catalog.problem_types} if catalog is not None else corpus_problem_types
    for p in sorted(wanted - known):
        where = "the corpus's catalog" if catalog is not None else "this corpus"
        raise UserError(f"--problem-type '{p}' is not a problem type of {where} ({', '.join(sorted(known))})")


def hf_token(env: Mapping[str, str] | None = None) -> str:
    token = (env if env is not None else os.environ).get(HF_TOKEN_ENV, "").strip()
    if not token:
        raise UserError(f"--push needs a Hugging Face token in the {HF_TOKEN_ENV} environment variable; "
                        f"set it (a write token from your Hugging Face settings) and try again")
    return token


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise UserError(f"--push '{repo_id}' is not a Hugging Face repository id like 'user/dataset-name'")


def push_to_hub(export_dir: Path, repo_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Upload an hf export (README.md card and data/*.parquet) to a Hub dataset repo; returns its URL.

    The token comes from HF_TOKEN unless given; stale parquet files of an earlier push are deleted.
    """
    _check_repo_id(repo_id)
    require_extra("huggingface_hub", "hf", "--push")
    token = token or hf_token()
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(export_dir),
                          allow_patterns=[CARD_FILE, "data/*.parquet"], delete_patterns=["data/*.parquet"],
                          commit_message="Upload synthetic empathetic dialogues (synth-empathy)")
    except Exception as exc:  # noqa: BLE001 - network and auth errors all end the same way
        raise RunError(f"pushing {export_dir} to the Hugging Face dataset {repo_id} failed: "
                       f"{type(exc).__name__}: {exc}") from exc
    return f"https://huggingface.co/datasets/{repo_id}"


def _hub_front_matter(splits: Iterable[str]) -> dict[str, Any]:
    return {"configs": [{"config_name": "default",
                         "data_files": [{"split": name, "path": f"data/{name}-*"} for name in splits]}]}


def _export_section(fmt: str, result: ExportResult, corpus_kept: int, selection: ExportSelection,
                    ratios: Sequence[float], seed: int) -> str:
    rows = "\n".join(f"| {name} | {result.splits[name]:,} | {result.families[name]:,} |" for name in result.splits)
    return f"""
## This export

{result.dialogues:,} of the corpus's {corpus_kept:,} kept dialogues, as a Hugging Face dataset ({fmt}).
Filters: {selection.describe()}. The statistics above describe the exported dialogues; the counts describe the run.

Splits were drawn with seed {seed} at {"/".join(f"{r:g}" for r in ratios)} (train/validation/test) by
**seed family**: all dialogues of one situation, whatever the persona, are in the same split, so no situation seen
in training reappears in evaluation.

| split | dialogues | families |
| --- | ---: | ---: |
{rows}

{_pii_line(result.pii)} Names are not checked: no maintained PyPI package ships an NER model.

Columns: `messages` (system/user/assistant, ready for a chat template; the supporter is the assistant),
`turns` (role, text, ESConv strategy, seeker intensity), seed fields (`emotion`, `problem_type`, `situation`,
`domain`, `persona_id`, `intensity`, `family`), judge scores (`sensibility`, `rationality`, `er`, `ip`, `ex`),
models, and `record`, the full dialogue as JSON.
"""


def _pii_line(report: PiiReport | None) -> str:
    if report is None:
        return "Personal data was not checked (--pii off)."
    line = report.summary()
    return f"{line[0].upper()}{line[1:]}."


HF_FILES = """\
- `data/<split>-00000-of-00001.parquet`: one Parquet file per split (what the Hub serves).
- `dataset_dict.json` and one folder per split: the same data for `datasets.load_from_disk`.
"""


def _write_hf(dialogues: list[Dialogue], out: Path, corpus: Corpus, selection: ExportSelection, ratios: Sequence[float],
              seed: int, system_prompt: str, result: ExportResult) -> None:
    import datasets

    from synth_empathy.publish.card import render_card_from_stats

    splits = {name: ds for name, ds in split_by_family(dialogues, ratios, seed).items() if ds}
    features = hf_features()
    data = datasets.DatasetDict({
        name: datasets.Dataset.from_list([hf_row(d, system_prompt) for d in ds], features=features)
        for name, ds in splits.items()})
    remove_written(out)  # _check_out allowed it: the files an earlier hf export recorded, with --overwrite
    before = files_under(out)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the CLI prints one summary line, not a bar per split and file
    try:
        data.save_to_disk(str(out))
        (out / "data").mkdir()
        for name, ds in data.items():
            ds.to_parquet(str(out / "data" / f"{name}-00000-of-00001.parquet"))
    finally:
        if bars:
            datasets.enable_progress_bars()
    result.splits = {name: len(ds) for name, ds in splits.items()}
    result.families = {name: len({family(d) for d in ds}) for name, ds in splits.items()}
    catalog, note = catalog_for(corpus.manifest)
    stats = corpus_stats(dialogues, corpus.rejections, corpus.manifest, catalog, note)
    stats["counts"] = count_summary(len(corpus.dialogues), len(corpus.rejections), corpus.manifest)
    card = render_card_from_stats(
        stats, corpus.manifest, front_matter_extra=_hub_front_matter(splits),
        export_section=_export_section("hf", result, len(corpus.dialogues), selection, ratios, seed),
        files_section=HF_FILES)
    (out / CARD_FILE).write_text(card, encoding="utf-8")
    record_written(out, before)


def _write_dpo(corpus: Corpus, chosen: list[Dialogue], selection: ExportSelection, out: Path,
               system_prompt: str, pii: PiiReport, min_margin: float | None) -> ExportResult:
    """Preference pairs from DIR/labels.jsonl edits and kept critique revisions (synth_empathy.publish.dpo)."""
    from synth_empathy.publish.dpo import preference_pairs
    from synth_empathy.review.labels import LABELS, read_labels

    rejected = [d for r in corpus.rejections if r.get("dialogue") and selection.accepts(d := Dialogue.model_validate(
        r["dialogue"]))]
    # The rejected side of a pair is text too: it gets the same pass as the chosen dialogues, into the same report.
    rejected, rejected_pii = pii_pass(rejected, pii.mode)
    pii.absorb(rejected_pii)
    every, skipped = preference_pairs(chosen, rejected, read_labels(corpus.path / LABELS), system_prompt)
    if not every:
        raise UserError(f"{corpus.path} holds no preference pairs: no supporter turn edited in "
                        f"`synth-empathy review` and no revised draft kept (generate --keep-drafts)")
    pairs = every if min_margin is None else [p for p in every if p["margin"] is not None
                                              and p["margin"] >= min_margin]
    if not pairs:
        known = sum(p["margin"] is not None for p in every)
        raise UserError(f"none of the {len(every):,} preference pairs in {corpus.path} has a margin >= "
                        f"{min_margin:g} ({known:,} have a margin at all: one is known only where a later critique "
                        f"round scored the revision and passed it, which needs dialogue.critique_rounds >= 2)")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out, pairs)
    counts = {source: sum(p["source"] == source for p in pairs) for source in ("human_edit", "critique_revision")}
    return ExportResult("dpo", out, len({p["dialogue_id"] for p in pairs}), pairs=counts, edits_skipped=skipped,
                        with_margin=sum(p["margin"] is not None for p in pairs), below_margin=len(every) - len(pairs))


def export_corpus(corpus_dir: Path, fmt: str, out: Path, *, selection: ExportSelection | None = None,
                  targets: str = "all", system_prompt: str | None = None,
                  split: Sequence[float] | str | None = None, seed: int = 0, push: str | None = None,
                  private: bool = False, overwrite: bool = False, pii: PiiMode = "report",
                  min_margin: float | None = None) -> ExportResult:
    """Export DIR/dialogues.jsonl as `fmt` to `out`; UserError (one sentence) for any bad input.

    Args:
        corpus_dir: an output directory of `generate` or `filter`.
        fmt: "openai" (chat fine-tuning JSONL), "sharegpt" (JSONL, or a JSON array when out ends in .json),
            "hf" (a folder: `datasets` save_to_disk + data/*.parquet + README.md data card), "prompt-completion"
            (TRL conversational prompt/completion JSONL, one row per supporter reply, see publish.rows) or "dpo"
            (TRL preference pairs JSONL from review edits and critique revisions, see synth_empathy.publish.dpo).
        out: the file (openai, sharegpt) or folder (hf) to write; an existing one is replaced only with overwrite.
        selection: from `build_selection`; None keeps every dialogue.
        targets: openai and prompt-completion: "all" supporter turns are training targets, or only the "last"
            (openai: weight 0/1, which only OpenAI reads; prompt-completion: one row per dialogue).
        system_prompt: the system message; None is DEFAULT_SYSTEM_PROMPT.
        split: hf only: train/validation/test shares (default 0.8/0.1/0.1), by seed family; seed shuffles them.
        push: hf only: a Hub dataset repo id; needs HF_TOKEN in the environment (checked before anything is written).
        pii: the personal-data pass over the chosen dialogues before anything is written or pushed: "report"
            (count by type), "mask" (replace each span by its type), "drop" (leave such dialogues out) or "off".
        min_margin: dpo only: keep the pairs whose margin (the critic's rubric total of the chosen reply minus the
            rejected draft's, -6..6) is known and at least this.

    Example:
        >>> export_corpus(Path("outputs/run1"), "openai", Path("train.jsonl"), targets="last")  # doctest: +SKIP
    """
    corpus_dir, out = Path(corpus_dir), Path(out)
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if targets not in TARGETS:
        raise UserError(f"--targets must be 'all' or 'last', not '{targets}'")
    if targets != "all" and fmt not in TARGETED:
        raise UserError(f"--targets applies to the openai and prompt-completion formats only (the {fmt} export "
                        f"trains on every reply)")
    if min_margin is not None and fmt != "dpo":
        raise UserError("--min-margin applies to the dpo format only")
    if fmt != "hf" and (split is not None or push):
        raise UserError(f"--{'push' if push else 'split'} applies to the hf format only")
    ratios = parse_split(split)
    if fmt == "hf":
        require_extra("datasets", "hf", "the hf export")
    token = None
    if push:
        _check_repo_id(push)
        require_extra("huggingface_hub", "hf", "--push")
        token = hf_token()
    selection = selection or ExportSelection()
    system_prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
    corpus = read_corpus(corpus_dir)
    # A sibling lock file (.OUT.lock), also for the hf folder: a refused or failed export leaves no folder behind.
    with output_lock(out, folder=False):
        return _export_locked(corpus, corpus_dir, fmt, out, selection, targets, system_prompt, ratios, seed, push,
                              private, overwrite, token, pii, min_margin)


def _export_locked(corpus: Corpus, corpus_dir: Path, fmt: str, out: Path, selection: ExportSelection, targets: str,
                   system_prompt: str, ratios: Sequence[float], seed: int, push: str | None, private: bool,
                   overwrite: bool, token: str | None, pii: PiiMode, min_margin: float | None) -> ExportResult:
    _check_out(out, corpus_dir, fmt, overwrite)
    if not corpus.dialogues:
        raise UserError(f"{corpus_dir / KEPT_FILE} holds no dialogues to export")
    if selection.problem_types:
        _check_problem_types(selection.problem_types, {d.seed.problem_type for d in corpus.dialogues},
                             catalog_for(corpus.manifest)[0])
    chosen = [d for d in corpus.dialogues if selection.accepts(d)]
    if not chosen:
        raise UserError(f"none of the {len(corpus.dialogues):,} dialogues in {corpus_dir} passes the filters "
                        f"({selection.describe()})")
    selected = len(chosen)
    chosen, pii_report = pii_pass(chosen, pii)
    if not chosen:
        raise UserError(f"every selected dialogue in {corpus_dir} carries personal data, and --pii drop left none")
    if fmt == "dpo":
        result = _write_dpo(corpus, chosen, selection, out, system_prompt, pii_report, min_margin)
        result.pii = pii_report if pii != "off" else None
        return result
    trainable = [d for d in chosen if any(t.role == "supporter" for t in d.turns)]
    if not trainable:
        raise UserError(f"none of the {len(chosen):,} selected dialogues in {corpus_dir} has a supporter turn")
    result = ExportResult(fmt, out, len(trainable), filtered_out=len(corpus.dialogues) - selected,
                          without_reply=len(chosen) - len(trainable), pii=pii_report if pii != "off" else None,
                          targets=targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "openai":
        _write_jsonl(out, (to_openai(d, targets, system_prompt) for d in trainable))
    elif fmt == "prompt-completion":
        rows = [row for d in trainable for row in prompt_completion_rows(d, system_prompt, targets)]
        _write_jsonl(out, rows)
        result.rows = len(rows)
    elif fmt == "sharegpt":
        _write_jsonl(out, (to_sharegpt(d, system_prompt) for d in trainable), as_array=out.suffix == ".json")
    else:
        _write_hf(trainable, out, corpus, selection, ratios, seed, system_prompt, result)
        if push:
            result.pushed_to = push_to_hub(out, push, token=token, private=private)
    return result

