"""Statistics of a finished corpus, shared by the data card, the HTML report and `synth-empathy stats`.

Everything here works on records (kept `Dialogue`s, rejected records as dicts, the `Manifest`) and returns
plain JSON-ready values, except `stats_for_dir` and `catalog_for`, the two edges that read files.
`CorpusPass` gathers every figure in one pass over the records, so a corpus can be streamed from disk
(`corpus.read.stream_corpus`); its result is the one dict that `stats --json` prints and that the card and
the report render.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_empathy.corpus.read import Corpus, CorpusStream, stream_corpus
from synth_empathy.errors import UserError
from synth_empathy.filters.dedup import dialogue_text
from synth_empathy.publish.human_agreement import format_text
from synth_empathy.schema import Dialogue, Manifest
from synth_empathy.text import jaccard, ngrams, shingles, word_count, words

if TYPE_CHECKING:
    from synth_empathy.graphs.catalog import Catalog

SCORE_METRICS = ("sensibility", "rationality")
EPITOME_METRICS = ("er", "ip", "ex")
SCORE_BINS = tuple(range(11))  # a score is counted in the bin of its nearest whole number, 0..10
SELF_SIMILARITY_SAMPLE = 200
SHINGLE_WORDS = 3  # the dedup stage's default word n-gram, so self-similarity reads against its threshold


# ------------------------------------------------------------------ the catalog (the I/O edge)


def catalog_for(manifest: Manifest | None) -> tuple[Catalog | None, str | None]:
    """The catalog a run sampled from (its config's personas_dir/scenarios_dir), or None and why not."""
    if manifest is None:
        return None, "no manifest.json, so the catalog the corpus was sampled from is unknown"
    personas_dir = manifest.config.get("personas_dir")
    scenarios_dir = manifest.config.get("scenarios_dir")
    if not personas_dir or not scenarios_dir:
        return None, "the manifest's config names no personas_dir/scenarios_dir"
    from synth_empathy.graphs.catalog import load_catalog

    try:
        return load_catalog(Path(personas_dir), Path(scenarios_dir)), None
    except UserError as exc:
        return None, f"the catalog named in the manifest did not load ({exc})"


# ------------------------------------------------------------------ pure pieces


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "min": None, "max": None}
    return {"n": len(values), "mean": round(sum(values) / len(values), 3), "min": min(values), "max": max(values)}


def histogram(values: Iterable[float], bins: Sequence[int] = SCORE_BINS) -> list[int]:
    """Counts per whole-number bin: a 7.5 (two judge samples averaged) counts as 8, a 7.49 as 7."""
    counts = [0] * len(bins)
    lo, hi = bins[0], bins[-1]
    for v in values:
        counts[min(hi, max(lo, math.floor(v + 0.5))) - lo] += 1
    return counts


def count_summary(kept: int, rejected: int, manifest: Manifest | None) -> dict:
    planned = manifest.counts.get("planned") if manifest else None
    return {
        "planned": planned,
        "kept": kept,
        "rejected": rejected,
        "finished": kept + rejected,
        "keep_rate": rate(kept, kept + rejected),
    }


def rejection_breakdown(rejections: Iterable[Mapping]) -> dict[str, Any]:
    """Rejected records by stage, by reason code, and by reason inside each stage (a record may give several)."""
    by_stage: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    by_stage_reason: dict[str, Counter[str]] = {}
    for r in rejections:
        stage = str(r.get("stage", "unknown"))
        reasons = [str(x) for x in r.get("reasons") or ["unknown"]]
        by_stage[stage] += 1
        by_reason.update(reasons)
        by_stage_reason.setdefault(stage, Counter()).update(reasons)
    return {
        "by_stage": dict(by_stage.most_common()),
        "by_reason": dict(by_reason.most_common()),
        "by_stage_reason": {s: dict(c.most_common()) for s, c in sorted(by_stage_reason.items(),
                                                                          key=lambda kv: -by_stage[kv[0]])},
    }


def slim_rejection(record: Mapping) -> dict:
    """What the statistics read of a rejected record: its stage, reasons and (judge rejections) scores."""
    scores = (record.get("dialogue") or {}).get("scores") if isinstance(record.get("dialogue"), dict) else None
    return {"stage": record.get("stage", "unknown"), "reasons": record.get("reasons"),
            "dialogue": {"scores": scores} if isinstance(scores, dict) else {}}


def cell_counts(dialogues: Iterable[Dialogue]) -> Counter[tuple[str, str]]:
    """Kept dialogues per (emotion, problem type) cell of the scenario space."""
    return Counter((d.seed.emotion, d.seed.problem_type) for d in dialogues)


def seeker_intensities(dialogue: Dialogue) -> list[int]:
    return [t.intensity for t in dialogue.turns if t.role == "seeker" and t.intensity is not None]


class DistinctNgrams:
    """distinct-n (Li et al. 2016) for several n, fed one text at a time (each tokenized once)."""

    def __init__(self, ns: Sequence[int] = (1, 2)) -> None:
        self.totals = dict.fromkeys(ns, 0)
        self.seen: dict[int, set[tuple[str, ...]]] = {n: set() for n in ns}

    def add(self, text: str) -> None:
        w = words(text)
        for n, seen in self.seen.items():
            grams = list(ngrams(w, n))
            self.totals[n] += len(grams)
            seen.update(grams)

    def result(self) -> dict[int, float | None]:
        return {n: round(len(self.seen[n]) / total, 4) if total else None for n, total in self.totals.items()}


def distinct_ns(texts: Iterable[str], ns: Sequence[int] = (1, 2)) -> dict[int, float | None]:
    """Distinct n-grams over all n-grams across the texts, for each n; None when there are none."""
    counter = DistinctNgrams(ns)
    for text in texts:
        counter.add(text)
    return counter.result()


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    return distinct_ns(texts, (n,))[n]


def self_similarity(texts: Sequence[str], sample_size: int = SELF_SIMILARITY_SAMPLE, seed: int = 0) -> dict:
    """Mean pairwise Jaccard of word-trigram sets over a seeded sample: near 0 is varied, near 1 repetitive."""
    indices = list(range(len(texts)))
    if len(indices) > sample_size:
        indices = sorted(random.Random(seed).sample(indices, sample_size))
    sets = [set(shingles(words(texts[i]), SHINGLE_WORDS)) for i in indices]
    pairs = [jaccard(a, b) for a, b in itertools.combinations(sets, 2)]
    return {"sample": len(sets), "pairs": len(pairs),
            "mean_jaccard": round(sum(pairs) / len(pairs), 4) if pairs else None,
            "max_jaccard": round(max(pairs), 4) if pairs else None}


class _Reservoir:
    """A seeded uniform sample of a stream of unknown length (Vitter's algorithm R), kept in stream order."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seen, self.rng = size, 0, random.Random(seed)
        self.items: list[tuple[int, str]] = []

    def add(self, item: str) -> None:
        if len(self.items) < self.size:
            self.items.append((self.seen, item))
        elif (j := self.rng.randrange(self.seen + 1)) < self.size:
            self.items[j] = (self.seen, item)
        self.seen += 1

    def sample(self) -> list[str]:
        return [item for _, item in sorted(self.items)]


_DISTRIBUTIONS = ("emotion", "problem_type", "strategy", "persona", "age_band", "life_stage", "domain", "ending",
                  "language")


class CorpusPass:
    """Every statistic of a corpus, gathered in one pass over its records: memory grows with the distinct
    values seen (and distinct-n's n-gram sets), never with the dialogues' text, so the card of a 100,000-dialogue
    run costs what the card of a small one does. `add` each kept dialogue, `reject` each rejected record."""

    def __init__(self, sample_size: int = SELF_SIMILARITY_SAMPLE, seed: int = 0) -> None:
        self.kept = 0
        self.rejections: list[dict] = []
        self.scores: list[dict[str, Any]] = []
        self.counters: dict[str, Counter[str]] = {k: Counter() for k in _DISTRIBUTIONS}
        self.cells: Counter[tuple[str, str]] = Counter()
        self.turns: list[int] = []
        self.exchanges: list[int] = []
        self.words_per_dialogue: list[int] = []
        self.words_by_role: dict[str, list[int]] = {"seeker": [], "supporter": []}
        self.revised = 0
        self.crisis = 0
        self.intensity_by_turn: dict[int, list[int]] = {}
        self.profile_drops: dict[str, dict[str, list[int]]] = {}  # profile dimension -> level -> intensity drops
        self.without_profile = 0
        self.distinct = DistinctNgrams((1, 2))
        self.sample = _Reservoir(sample_size, seed)
        self.sample_size, self.seed = sample_size, seed
        self.models: dict[str, set[str]] = {"generator": set(), "judge": set()}
        self.programs: dict[str, set[str]] = {}
        self.fingerprints: set[str] = set()
        self.created: list[str] = []

    def add(self, d: Dialogue) -> None:
        self.kept += 1
        if d.scores is not None:
            self.scores.append(d.scores.model_dump(exclude={"rationale"}))
        s = d.seed
        for name, value in (("language", s.language), ("emotion", s.emotion), ("problem_type", s.problem_type),
                            ("persona", s.persona.id),
                            ("age_band", s.persona.age_band), ("life_stage", s.persona.life_stage),
                            ("domain", s.situation.domain), ("ending", d.ending)):
            self.counters[name][value] += 1
        self.cells[(s.emotion, s.problem_type)] += 1
        counts = [word_count(t.text) for t in d.turns]
        for t, c in zip(d.turns, counts, strict=True):
            self.words_by_role[t.role].append(c)
            if t.role == "supporter":
                self.distinct.add(t.text)
                self.revised += t.revised
                if t.strategy:
                    self.counters["strategy"][t.strategy] += 1
        self.turns.append(len(d.turns))
        self.exchanges.append(sum(t.role == "supporter" for t in d.turns))
        self.words_per_dialogue.append(sum(counts))
        self.crisis += d.crisis
        intensities = seeker_intensities(d)
        for i, value in enumerate(intensities, 1):
            self.intensity_by_turn.setdefault(i, []).append(value)
        if d.seed.profile is None:
            self.without_profile += 1
        else:
            drop = intensities[0] - intensities[-1] if intensities else 0
            for name, level in d.seed.profile.model_dump().items():
                self.profile_drops.setdefault(name, {}).setdefault(str(level).lower(), []).append(drop)
        self.sample.add(dialogue_text(d, "dialogue"))
        p = d.provenance
        self.models["generator"].add(p.generator_model)
        if p.judge_model:
            self.models["judge"].add(p.judge_model)
        self.fingerprints.add(p.config_fingerprint)
        for name, v in p.program_versions.items():
            self.programs.setdefault(name, set()).add(v)
        self.created.append(p.created)

    def reject(self, record: Mapping) -> None:
        self.rejections.append(slim_rejection(record))

    def result(self, manifest: Manifest | None = None, catalog: Catalog | None = None,
               catalog_note: str | None = None) -> dict[str, Any]:
        """The `stats --json` dict."""
        return {
            "dialogues": self.kept,
            "counts": count_summary(self.kept, len(self.rejections), manifest),
            "rejections": rejection_breakdown(self.rejections),
            "scores": self._scores(),
            "distributions": {k: dict(c.most_common()) for k, c in self.counters.items()},
            "coverage": self._coverage(catalog, catalog_note),
            "lengths": self._lengths(),
            "intensity_by_turn": [{"turn": i, "n": len(v), "mean": round(sum(v) / len(v), 3)}
                                  for i, v in sorted(self.intensity_by_turn.items())],
            "seeker_profiles": self._profiles(),
            "diversity": self._diversity(),
            "usage": usage_summary(manifest, self.kept),
            "provenance": self._provenance(manifest),
            "human_agreement": manifest.human_agreement if manifest else None,  # from `synth-empathy calibrate`
        }

    def _scores(self) -> dict[str, Any]:
        """Judge scores of kept dialogues and of rejected ones that were scored (the judge's own rejections)."""
        kept = self.scores
        rejected = [r["dialogue"]["scores"] for r in self.rejections if r["dialogue"].get("scores")]
        out: dict[str, Any] = {"bins": list(SCORE_BINS), "scored_kept": len(kept), "scored_rejected": len(rejected)}
        for metric in SCORE_METRICS:
            k = [float(s[metric]) for s in kept if s.get(metric) is not None]
            r = [float(s[metric]) for s in rejected if s.get(metric) is not None]
            out[metric] = {"kept": summary(k) | {"histogram": histogram(k)},
                           "rejected": summary(r) | {"histogram": histogram(r)}}
        for metric in EPITOME_METRICS:
            out[metric] = summary([float(s[metric]) for s in kept if s.get(metric) is not None])
        failures: Counter[str] = Counter()
        for s in kept:
            failures.update(name for name, flagged in (s.get("failures") or {}).items() if flagged)
        out["failures_kept"] = dict(failures.most_common())
        return out

    def _coverage(self, catalog: Catalog | None, note: str | None) -> dict[str, Any]:
        """graphs.sampler.coverage of the kept seeds; without a catalog, {"skipped": why}."""
        if catalog is None:
            return {"skipped": note or "no catalog"}
        from synth_empathy.graphs.sampler import coverage_of_counts

        measured = coverage_of_counts(self.counters["emotion"], self.counters["problem_type"],
                                      self.counters["persona"], set(self.cells), self.kept, catalog)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in measured.items()}

    def _lengths(self) -> dict[str, Any]:
        """Turns per dialogue and words per turn, by role."""
        return {
            "turns_per_dialogue": summary(self.turns),
            "exchanges_per_dialogue": summary(self.exchanges),
            "exchanges_histogram": {str(k): v for k, v in sorted(Counter(self.exchanges).items())},
            "words_per_seeker_turn": summary(self.words_by_role["seeker"]),
            "words_per_supporter_turn": summary(self.words_by_role["supporter"]),
            "words_per_dialogue": summary(self.words_per_dialogue),
            "total_words": sum(self.words_per_dialogue),
            "revised_supporter_turns": self.revised,
            "crisis_dialogues": self.crisis,
        }

    def _profiles(self) -> dict[str, Any]:
        """Kept dialogues per seeker-profile level, with the mean intensity drop (first seeker turn to last) at
        each: do harder seekers come down less? Dialogues made before profiles count under `without_profile`."""
        return {
            "without_profile": self.without_profile,
            "levels": {name: {level: {"n": len(v), "mean_intensity_drop": round(sum(v) / len(v), 3)}
                              for level, v in sorted(by_level.items())}
                       for name, by_level in self.profile_drops.items()},
        }

    def _diversity(self) -> dict[str, Any]:
        distinct = self.distinct.result()
        return {"distinct_1": distinct[1], "distinct_2": distinct[2],
                "self_similarity": self_similarity(self.sample.sample(), self.sample_size, self.seed)}

    def _provenance(self, manifest: Manifest | None) -> dict[str, Any]:
        """Models, program versions, config, versions and dates: from the manifest, completed by the records."""
        models = {role: set(names) for role, names in self.models.items()}
        fingerprints = set(self.fingerprints)
        created = sorted(self.created)
        cfg = manifest.config if manifest else {}
        if manifest:
            for role in ("generator", "judge"):
                if manifest.models.get(role):
                    models[role].add(manifest.models[role])
            fingerprints.add(manifest.config_fingerprint)
        return {
            "generator_models": sorted(models["generator"]),
            "judge_models": sorted(models["judge"]),
            "program_versions": {k: sorted(v) for k, v in sorted(self.programs.items())},
            "config_fingerprints": sorted(fingerprints),
            "package_version": manifest.package_version if manifest else None,
            "versions": dict(manifest.versions) if manifest else {},
            "seed": cfg.get("seed"),
            "license": cfg.get("license"),
            "created": manifest.created if manifest else (created[0] if created else None),
            "finished": manifest.finished if manifest else None,
            "first_dialogue": created[0] if created else None,
            "last_dialogue": created[-1] if created else None,
        }


def _cost(obj: Any) -> float | None:
    value = getattr(obj, "cost_usd", None)  # absent from manifests written before prices were recorded
    return float(value) if isinstance(value, int | float) else None


def usage_summary(manifest: Manifest | None, kept: int = 0) -> dict[str, Any]:
    """Calls, retries and tokens per stage and in total; cost only where the manifest records one.

    The total cost is the manifest's own, which is unknown (None) unless every stage that made calls
    had a price: a sum of the priced stages alone would understate it.
    """
    if manifest is None:
        return {"stages": {}, "total": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "tokens": 0},
                "tokens_per_kept": None, "cost_usd": None}
    stages = {}
    for name, u in manifest.usage.items():
        stages[name] = {"calls": u.calls, "retries": getattr(u, "retries", 0),
                        "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "cost_usd": _cost(u)}
    total = {k: sum(s[k] for s in stages.values()) for k in ("calls", "retries", "input_tokens", "output_tokens")}
    total["tokens"] = total["input_tokens"] + total["output_tokens"]
    return {"stages": stages, "total": total,
            "tokens_per_kept": round(total["tokens"] / kept, 1) if kept else None,
            "cost_usd": _cost(manifest)}


# ------------------------------------------------------------------ the whole picture


def corpus_stats(dialogues: Iterable[Dialogue], rejections: Iterable[Mapping] = (), manifest: Manifest | None = None,
                 catalog: Catalog | None = None, catalog_note: str | None = None,
                 sample_size: int = SELF_SIMILARITY_SAMPLE, seed: int = 0) -> dict[str, Any]:
    """Every statistic of a corpus as one JSON-ready dict (the `stats --json` output)."""
    gathered = CorpusPass(sample_size, seed)
    for d in dialogues:
        gathered.add(d)
    for r in rejections:
        gathered.reject(r)
    return gathered.result(manifest, catalog, catalog_note)


def stats_for_corpus(corpus: Corpus | CorpusStream, catalog: Catalog | None = None,
                     catalog_note: str | None = None) -> dict:
    """corpus_stats of a read (or streamed) corpus, with the catalog its manifest names unless one is given."""
    if catalog is None and catalog_note is None:
        catalog, catalog_note = catalog_for(corpus.manifest)
    gathered = CorpusPass()
    streamed = isinstance(corpus, CorpusStream)
    for d in corpus.dialogues() if streamed else corpus.dialogues:
        gathered.add(d)
    for r in corpus.rejections(slim_rejection) if streamed else corpus.rejections:  # after: it skips kept seeds
        gathered.reject(r)
    stats = gathered.result(corpus.manifest, catalog, catalog_note)
    stats["corpus"] = str(corpus.path)
    if corpus.unreadable:
        stats["unreadable_records"] = corpus.unreadable
    return stats


def stats_for_dir(corpus_dir: Path) -> dict[str, Any]:
    """What `synth-empathy stats DIR --json` prints; UserError for a missing dir or dialogues.jsonl."""
    return stats_for_corpus(stream_corpus(Path(corpus_dir)))


# ------------------------------------------------------------------ terminal


def format_number(value: float | int | None, digits: int = 2) -> str:
    """Shared by the terminal stats, the data card and the HTML report."""
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def format_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


_num, _pct = format_number, format_percent


def _bar(kept: int, rejected: int, peak: int, width: int = 30) -> str:
    """Kept as full blocks, judge-rejected as light shade after them; any non-zero count gets one glyph."""
    def cells(n: int) -> int:
        return max(1, round(width * n / peak)) if n and peak else 0

    return "█" * cells(kept) + "░" * cells(rejected)


def _reasons(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counter.items())


def format_stats(stats: Mapping[str, Any]) -> str:
    """The `synth-empathy stats DIR` text: counts, keep rate, score histograms, coverage, tokens, cost."""
    c = stats["counts"]
    lines = []
    if stats.get("corpus"):
        lines.append(f"corpus        {stats['corpus']}")
    planned = f" of {c['planned']:,} planned" if c.get("planned") is not None else ""
    lines.append(f"dialogues     {c['kept']:,} kept, {c['rejected']:,} rejected{planned} "
                 f"(keep rate {_pct(c['keep_rate'])})")
    rej = stats["rejections"]
    for stage, reasons in rej["by_stage_reason"].items():
        lines.append(f"  rejected at {stage:<9} {rej['by_stage'][stage]:>6,}  ({_reasons(reasons)})")
    scores = stats["scores"]
    for metric in SCORE_METRICS:
        kept, rejected = scores[metric]["kept"], scores[metric]["rejected"]
        lines.append("")
        lines.append(f"{metric:<13} kept: mean {_num(kept['mean'])} (n={kept['n']:,})"
                     + (f"   rejected by the judge: mean {_num(rejected['mean'])} (n={rejected['n']:,})"
                        if rejected["n"] else ""))
        if kept["n"] or rejected["n"]:
            peak = max(k + r for k, r in zip(kept["histogram"], rejected["histogram"], strict=True))
            for b, k, r in zip(scores["bins"], kept["histogram"], rejected["histogram"], strict=True):
                tail = f"  + {r:,} rejected (░)" if r else ""
                lines.append(f"  {b:>2} | {_bar(k, r, peak):<31} {k:>6,}{tail}")
    lines.append("")
    cov = stats["coverage"]
    if "skipped" in cov:
        lines.append(f"coverage      skipped: {cov['skipped']}")
    else:
        lines.append(f"coverage      {cov['cells_covered']:,} of {cov['cells_possible']:,} plausible emotion x "
                     f"problem type cells ({_pct(cov['cell_coverage'])})")
        lines.append(f"  normalized entropy: emotion {_num(cov['emotion_entropy'])}, problem type "
                     f"{_num(cov['problem_type_entropy'])}, persona {_num(cov['persona_entropy'])}")
    d = stats["diversity"]
    sim = d["self_similarity"]
    lines.append(f"diversity     distinct-1 {_num(d['distinct_1'], 3)}, distinct-2 {_num(d['distinct_2'], 3)} "
                 f"(supporter turns); self-similarity {_num(sim['mean_jaccard'], 3)} "
                 f"(mean Jaccard of {sim['sample']} dialogues)")
    profiles = stats.get("seeker_profiles") or {}
    if profiles.get("levels"):
        lines.append("profiles      " + "; ".join(
            f"{name} " + ", ".join(f"{level} {v['n']:,}" for level, v in by_level.items())
            for name, by_level in profiles["levels"].items()))
    lengths = stats["lengths"]
    lines.append(f"lengths       {_num(lengths['turns_per_dialogue']['mean'], 1)} turns a dialogue, "
                 f"{_num(lengths['words_per_supporter_turn']['mean'], 1)} words a supporter turn, "
                 f"{_num(lengths['words_per_seeker_turn']['mean'], 1)} a seeker turn")
    languages = stats["distributions"].get("language") or {}
    if languages:
        lines.append("languages     " + ", ".join(f"{code} {n:,}" for code, n in languages.items()))
    lines.append("")
    usage = stats["usage"]
    total = usage["total"]
    if usage["stages"]:
        per_kept = f", {usage['tokens_per_kept']:,.0f} per kept dialogue" if usage["tokens_per_kept"] else ""
        lines.append(f"tokens        {total['tokens']:,} ({total['input_tokens']:,} in, {total['output_tokens']:,} "
                     f"out, {total['calls']:,} calls{per_kept})")
    else:
        lines.append("tokens        not recorded (no usage in the manifest)")
    for name, u in usage["stages"].items():
        cost = f", ${u['cost_usd']:,.4f}" if u.get("cost_usd") is not None else ""
        lines.append(f"  {name:<11} {u['input_tokens'] + u['output_tokens']:>12,}  ({u['calls']:,} calls{cost})")
    cost = usage.get("cost_usd")
    unknown = "not recorded (no [prices] for the models)"
    lines.append("cost          " + (f"${cost:,.4f}" if cost is not None else unknown))
    lines += ["", format_text(stats.get("human_agreement"))]
    return "\n".join(lines)
