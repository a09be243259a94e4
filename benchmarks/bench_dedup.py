"""Benchmark of synth_empathy.filters.dedup on a synthetic corpus with planted duplicates (a script, not a test).

    python benchmarks/bench_dedup.py [--n 100000] [--seed 0] [--naive-sample 1000] [--no-write]

Generates N ~300-word dialogues from a seeded vocabulary/template generator, plants exact copies
(differing only in case, spacing and punctuation) and near copies edited to known Jaccard levels
above and below the threshold, then runs ``dedup_dialogues`` pinned to one core with single-threaded
numpy. Prints a markdown table and writes it to the "## Dedup" section of BENCHMARKS.md.

Recall: a planted pair counts as found when both texts end with the same keeper. Precision: every
reported duplicate is re-checked with an independent pure-Python Jaccard on word-trigram strings
(no hashing), and must reach the threshold. Timing targets are reported, never asserted.
"""

from __future__ import annotations

import os

# Pin to one core and one numpy/BLAS thread before numpy is imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import itertools  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import datasketch  # noqa: E402
import numpy as np  # noqa: E402

from synth_empathy.config import DedupConfig  # noqa: E402
from synth_empathy.filters.dedup import (  # noqa: E402
    DedupIndex,
    dedup_dialogues,
    dialogue_text,
    lsh_params,
)
from synth_empathy.schema import Dialogue, Persona, Provenance, Seed, Situation, Turn  # noqa: E402

NEAR_LEVELS_ABOVE = (0.82, 0.85, 0.90, 0.95)
NEAR_LEVELS_BELOW = (0.60, 0.70, 0.75, 0.78)
EXACT_SHARE = 0.01  # of N: exact copies
NEAR_SHARE = 0.04  # of N: near copies, spread evenly over the levels above

SEEKER_TEMPLATES = (
    "i have been feeling {a} about {n} since {n} and i do not know what to do",
    "honestly the {n} at {n} has made me {a} and i keep thinking about {n}",
    "my {n} said something about {n} and now i feel {a} all the time",
    "it is hard to explain but {n} keeps getting {a} whenever {n} comes up",
    "i tried talking to my {n} about {n} but it just made things more {a}",
)
SUPPORTER_TEMPLATES = (
    "it sounds like {n} has been really {a} for you lately",
    "that must be {a} especially with {n} and {n} on your mind",
    "i hear how much {n} matters to you and how {a} this feels",
    "would it help to talk about what {n} means to you right now",
    "you have been carrying a lot with {n} and feeling {a} makes sense",
)


# ------------------------------------------------------------------ corpus generator


def make_vocab(rng: random.Random, size: int) -> tuple[list[str], list[float]]:
    """Pseudo-words from syllables and their cumulative Zipf-like weights (some common, most rare)."""
    onsets = "b c d f g h j k l m n p r s t v w z br st tr pl gr sh ch".split()
    vowels = "a e i o u ai ou".split()
    codas = ["", "n", "r", "s", "t", "l", "m"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                          for _ in range(rng.randint(1, 3))))
    vocab = sorted(words)
    rng.shuffle(vocab)
    return vocab, list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(vocab))))


def make_turns(rng: random.Random, vocab: list[str], cum_weights: list[float], words: int = 300) -> list[list[str]]:
    """Eight alternating turns (seeker first) of template sentences padded with filler, ~``words`` words."""
    turns = []
    per_turn = words // 8
    for t in range(8):
        template = rng.choice(SEEKER_TEMPLATES if t % 2 == 0 else SUPPORTER_TEMPLATES)
        sentence = template.replace("{a}", "{n}").split()
        fill = rng.choices(vocab, cum_weights=cum_weights, k=per_turn)
        out = [fill.pop() if w == "{n}" else w for w in sentence]
        out.extend(fill[: max(per_turn - len(out), 0)])
        turns.append(out)
    return turns


def render(turns: list[list[str]]) -> list[str]:
    """Turn word lists into sentences with a capital letter and a full stop."""
    return [(" ".join(words)).capitalize() + "." for words in turns]


def cosmetic_copy(rng: random.Random, turns: list[list[str]]) -> list[str]:
    """The same words with other case, spacing and punctuation: an exact duplicate after normalization."""
    out = []
    for words in turns:
        styled = [w.upper() if rng.random() < 0.1 else w for w in words]
        styled = [w + rng.choice(("!", ",", "?!", "...")) if rng.random() < 0.05 else w for w in styled]
        out.append("  ".join(styled) + " :)")
    return out


def edited_copy(rng: random.Random, turns: list[list[str]], vocab: list[str], target: float,
                ngram: int) -> list[list[str]]:
    """Substitute words far enough apart that each edit changes ``ngram`` shingles, aiming at Jaccard ``target``.

    With S shingles and m isolated substitutions, m*ngram shingles are replaced: J = (S - mn) / (S + mn).
    """
    flat = [w for words in turns for w in words]
    s = len(flat) - ngram + 1
    m = max(1, round(s * (1 - target) / (ngram * (1 + target))))
    slots = list(range(0, len(flat), ngram))
    for pos in rng.sample(slots, min(m, len(slots))):
        flat[pos + rng.randrange(min(ngram, len(flat) - pos))] = rng.choice(vocab) + "x"
    out, start = [], 0
    for words in turns:
        out.append(flat[start:start + len(words)])
        start += len(words)
    return out


def generate(n: int, seed: int, ngram: int) -> tuple[list[Dialogue], list[tuple[str, str, str]]]:
    """N dialogues and the planted pairs (original id, copy id, label: "exact" or the target Jaccard).

    Dialogues are built one at a time and only the word lists of copied originals are kept, so the
    process holds little more than the Dialogue objects themselves.
    """
    rng = random.Random(seed)
    vocab, cum_weights = make_vocab(rng, 20000)
    n_exact = int(n * EXACT_SHARE)
    n_near = int(n * NEAR_SHARE)
    n_orig = n - n_exact - n_near
    levels = NEAR_LEVELS_ABOVE + NEAR_LEVELS_BELOW
    ids = [f"{rng.getrandbits(48):012x}" for _ in range(n)]
    sources = rng.sample(range(n_orig), n_exact + n_near)
    wanted = set(sources)
    seed_obj = _seed()
    provenance = Provenance(generator_model="synthetic", config_fingerprint="bench", created="2000-01-01T00:00:00",
                            package_version="bench")

    def dialogue(item_id: str, turn_texts: list[str]) -> Dialogue:
        turns = [Turn(role="seeker", text=t) if j % 2 == 0
                 else Turn(role="supporter", text=t, strategy="reflection_of_feelings")
                 for j, t in enumerate(turn_texts)]
        return Dialogue(id=item_id, seed=seed_obj, turns=turns, ending="natural", provenance=provenance)

    dialogues, kept_words = [], {}
    for i in range(n_orig):
        words = make_turns(rng, vocab, cum_weights)
        if i in wanted:
            kept_words[i] = words
        dialogues.append(dialogue(ids[i], render(words)))
    planted = []
    for k, src in enumerate(sources):
        copy_id = ids[len(dialogues)]
        if k < n_exact:
            dialogues.append(dialogue(copy_id, cosmetic_copy(rng, kept_words[src])))
            planted.append((ids[src], copy_id, "exact"))
        else:
            target = levels[k % len(levels)]
            dialogues.append(dialogue(copy_id, render(edited_copy(rng, kept_words[src], vocab, target, ngram))))
            planted.append((ids[src], copy_id, f"{target:.2f}"))
    rng.shuffle(dialogues)  # copies are not all at the end
    return dialogues, planted


def _seed() -> Seed:
    persona = Persona(id="p", name="Sam", age_band="25-34", life_stage="early_career", occupation="clerk",
                      region="nowhere", communication_style="direct", support_preference="listening",
                      emotional_baseline="calm", bio="synthetic")
    situation = Situation(id="s", text="synthetic", emotions=["sad"], problem_type="loss", domain="loss")
    return Seed(id="seed", index=0, persona=persona, situation=situation, emotion="sad", problem_type="loss",
                intensity=5)


# ------------------------------------------------------------------ independent checks


_PUNCT = re.compile(r"[^\w\s]")


def exact_jaccard(a: str, b: str, ngram: int) -> float:
    """Jaccard of word n-gram sets built from strings, independently of the hashing in dedup.py."""
    def grams(text: str) -> set[tuple[str, ...]]:
        words = _PUNCT.sub("", text.lower()).split()
        return set(zip(*(words[i:] for i in range(ngram)), strict=False)) if len(words) >= ngram else {tuple(words)}
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def naive_docs_per_s(texts: list[str], num_perm: int, ngram: int) -> float:
    """Signatures only, the textbook way: one MinHash.update (sha1 hashfunc) per shingle."""
    start = time.perf_counter()
    for text in texts:
        words = _PUNCT.sub("", text.lower()).split()
        m = datasketch.MinHash(num_perm=num_perm)
        for gram in zip(*(words[i:] for i in range(ngram)), strict=False):
            m.update(" ".join(gram).encode("utf-8"))
    return len(texts) / (time.perf_counter() - start)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------ report


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs (nproc), {model}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"datasketch {datasketch.__version__}")


def write_section(path: Path, body: str) -> None:
    """Replace (or append) the "## Dedup" section of BENCHMARKS.md, leaving other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    section = "## Dedup\n\n" + body.rstrip() + "\n"
    match = re.search(r"^## Dedup[ \t]*\n.*?(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    if match:
        text = text[:match.start()] + section + ("\n" if match.end() < len(text) else "") + text[match.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="dialogues to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-sample", type=int, default=1000, help="dialogues for the naive datasketch loop")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    config = DedupConfig()
    bands, rows = lsh_params(config.threshold, config.num_perm)

    t0 = time.perf_counter()
    dialogues, planted = generate(args.n, args.seed, config.ngram)
    gen_s = time.perf_counter() - t0
    by_id = {d.id: d for d in dialogues}

    def text(item_id: str) -> str:
        return dialogue_text(by_id[item_id], config.scope)

    mean_words = sum(len(text(d.id).split()) for d in dialogues[:1000]) / min(len(dialogues), 1000)
    rss_before = peak_rss_mb()

    t0 = time.perf_counter()
    kept, rejections = dedup_dialogues(dialogues, config)
    dedup_s = time.perf_counter() - t0
    rss_after = peak_rss_mb()

    # Recall over planted pairs, precision over everything reported.
    dropped = {r.id: r for r in rejections}
    keeper = {r.id: r.detail.split()[1] for r in rejections}
    found_by_label: dict[str, list[int]] = {}
    above = [0, 0]
    below = [0, 0]
    for orig, copy, label in planted:
        together = keeper.get(orig, orig) == keeper.get(copy, copy)
        stats = found_by_label.setdefault(label, [0, 0, 0])
        stats[0] += together
        stats[1] += 1
        if label != "exact":
            sim = exact_jaccard(text(orig), text(copy), config.ngram)
            stats[2] += sim
            bucket = above if sim >= config.threshold else below
            bucket[0] += together
            bucket[1] += 1
    correct = 0
    for r in rejections:
        a, b = text(r.id), text(keeper[r.id])
        if r.reasons == ["exact_duplicate"]:
            correct += _PUNCT.sub("", a.lower()).split() == _PUNCT.sub("", b.lower()).split()
        else:
            correct += exact_jaccard(a, b, config.ngram) >= config.threshold
    precision = correct / len(rejections) if rejections else 1.0
    planted_ids = {x for pair in planted for x in pair[:2]}
    unplanted = sum(1 for r in rejections if r.id not in planted_ids)
    reasons = {"exact_duplicate": 0, "near_duplicate": 0}
    for r in rejections:
        reasons[r.reasons[0]] += 1
    kept_ids = {d.id for d in kept}
    assert len(kept) + len(dropped) == len(dialogues) and all(k in kept_ids for k in keeper.values())

    sample = [text(d.id) for d in dialogues[: args.naive_sample]]
    naive_rate = naive_docs_per_s(sample, config.num_perm, config.ngram)
    rate = len(dialogues) / dedup_s

    # Streaming index: the first half becomes the corpus (saved and reloaded), the second half is checked.
    half = len(dialogues) // 2
    index = DedupIndex(config)
    t0 = time.perf_counter()
    dedup_dialogues(dialogues[:half], config, index)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dedup_index.npz"
        t0 = time.perf_counter()
        index.save(path)
        index = DedupIndex.load(path, config)
        io_s = time.perf_counter() - t0
        index_mb = path.stat().st_size / 2**20
    t0 = time.perf_counter()
    _, second = dedup_dialogues(dialogues[half:], config, index)
    check_s = time.perf_counter() - t0
    first_half = {d.id for d in dialogues[:half]}
    cross_found = sum(1 for r in second if r.detail.split()[1] in first_half)
    cross_expected = sum(1 for r in rejections if (r.id in first_half) != (keeper[r.id] in first_half))

    rows_md = [
        ("Dialogues (words per dialogue, mean)", f"{len(dialogues):,} ({mean_words:.0f})", ""),
        ("Dedup wall time, `dedup_dialogues`, 1 core", f"{dedup_s:.2f} s", "< 30 s"),
        ("Throughput", f"{rate:,.0f} dialogues/s", ""),
        ("Peak RSS of the process (before dedup: corpus only)", f"{rss_after:,.0f} MB ({rss_before:,.0f} MB)",
         "< 2048 MB"),
        (f"Naive `MinHash.update` per shingle, signatures only ({len(sample):,} sampled)",
         f"{naive_rate:,.0f} dialogues/s", ""),
        ("Speed-up over naive (ours end to end vs naive signatures only)", f"{rate / naive_rate:.0f}x", ">= 20x"),
        (f"Recall, planted near pairs with exact Jaccard >= {config.threshold}", f"{above[0] / max(above[1], 1):.4f}"
         f" ({above[0]:,}/{above[1]:,})", ">= 0.95"),
        ("Recall, planted exact copies (case/space/punctuation changed)",
         f"{found_by_label['exact'][0] / found_by_label['exact'][1]:.4f} "
         f"({found_by_label['exact'][0]:,}/{found_by_label['exact'][1]:,})", ""),
        (f"Planted pairs below {config.threshold} reported as duplicates", f"{below[0]:,}/{below[1]:,}", "0"),
        ("Precision (reported duplicates re-checked with string Jaccard)", f"{precision:.4f} "
         f"({correct:,}/{len(rejections):,})", "1.0"),
        ("Dropped: exact / near / outside planted pairs",
         f"{reasons['exact_duplicate']:,} / {reasons['near_duplicate']:,} / {unplanted:,}", ""),
        ("LSH bands x rows (threshold, num_perm, ngram)",
         f"{bands} x {rows} ({config.threshold}, {config.num_perm}, {config.ngram})", ""),
        (f"Index: build on first {half:,}, save + load, size", f"{build_s:.2f} s, {io_s:.2f} s, {index_mb:.0f} MB",
         ""),
        (f"Index: check last {len(dialogues) - half:,} against it; cross-half duplicates found (vs one-batch run)",
         f"{check_s:.2f} s; {cross_found:,}/{cross_expected:,}", ""),
    ]
    by_level = " · ".join(
        f"{label}: {v[0]}/{v[1]} (mean exact J {v[2] / v[1]:.3f})"
        for label, v in sorted(found_by_label.items()) if label != "exact")
    table = "| Measure | Result | Target |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows_md)
    body = (
        f"Command: `python benchmarks/bench_dedup.py --n {args.n}` (seed {args.seed})  \n"
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  \n"
        f"Machine: {machine()}; pinned to one core, single-threaded numpy\n\n"
        f"{table}\n\n"
        f"Found per planted level (target Jaccard: found/planted): {by_level}\n\n"
        "Corpus: seeded template + Zipf-vocabulary dialogues (8 turns). Planted: "
        f"{EXACT_SHARE:.0%} exact copies, {NEAR_SHARE:.0%} near copies edited by isolated word substitutions "
        f"to target Jaccard levels {', '.join(map(str, NEAR_LEVELS_ABOVE + NEAR_LEVELS_BELOW))} "
        "(the exact Jaccard of each pair is measured, and decides which recall row it counts in). "
        "A pair is found when both texts end with the same keeper. Precision re-checks every reported "
        "duplicate with a pure-Python Jaccard on word-trigram strings. "
        f"Generating the corpus took {gen_s:.1f} s and is not timed.\n"
    )
    print(body)
    if not args.no_write:
        write_section(REPO / "BENCHMARKS.md", body)
        print(f"wrote the Dedup section of {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
