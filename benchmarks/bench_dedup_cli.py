"""Benchmark of `synth-empathy dedup` run as a user runs it, on a chat JSONL with planted near-duplicates.

    python benchmarks/bench_dedup_cli.py [--n 100000] [--seed 0] [--repeat 2] [--naive-sample 1000]
                                         [--baseline DIR] [--no-write]

Writes N ~300-word dialogues as chat JSONL ({"id", "messages": [{role, content}], "source"}), with the
planted exact and near copies of benchmarks/bench_dedup.py, then runs `python -m synth_empathy dedup
corpus.jsonl --out kept.jsonl` in a child process, `--repeat` times. Wall time and peak RSS are the
child's, from resource.getrusage(RUSAGE_CHILDREN) in a small launcher process of its own (so one run's
peak is not another's, and the child does not inherit this process's RSS at fork).

`--baseline DIR` runs the same command with DIR (another checkout, e.g. `git archive <commit> | tar -x
-C DIR`) first on PYTHONPATH, interleaved with this tree's runs, so before and after share the
machine's load. The naive loop (one datasketch `MinHash.update` per shingle, signatures only) runs on
a sample in the same process and the ratio is the CLI's dialogues/s over the naive loop's.

Recall and precision are computed from what the command wrote: the kept file and the duplicates file
(either the verbatim layout, `{id, duplicate_of}` keyed by the input's ids, or the older internal layout
whose ids carry a "chat-" prefix). A planted pair is found when both ends have the same keeper;
precision re-checks every reported duplicate with a pure-Python string Jaccard. Times are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_dedup as core  # the corpus generator and independent checks of the in-process benchmark
from report_section import stamp, write_section

# bench_dedup pins its own process to one core on import; this benchmark measures a child process
# as a user runs it, so give the children the whole machine back.
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, range(os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
THRESHOLD, NGRAM, NUM_PERM = 0.8, 3, 128  # DedupConfig's defaults, which the command runs with


def write_corpus(path: Path, n: int, seed: int) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Write the chat JSONL; return {id: dialogue text} (the texts dedup compares) and the planted pairs."""
    rng = random.Random(seed)
    vocab, cum = core.make_vocab(rng, 20000)
    n_exact, n_near = int(n * core.EXACT_SHARE), int(n * core.NEAR_SHARE)
    n_orig = n - n_exact - n_near
    levels = core.NEAR_LEVELS_ABOVE + core.NEAR_LEVELS_BELOW
    ids = [f"{rng.getrandbits(48):012x}" for _ in range(n)]
    sources = rng.sample(range(n_orig), n_exact + n_near)
    wanted = set(sources)
    rows: list[tuple[str, list[str]]] = []
    kept_words = {}
    for i in range(n_orig):
        words = core.make_turns(rng, vocab, cum)
        if i in wanted:
            kept_words[i] = words
        rows.append((ids[i], core.render(words)))
    planted = []
    for k, src in enumerate(sources):
        copy_id = ids[len(rows)]
        if k < n_exact:
            rows.append((copy_id, core.cosmetic_copy(rng, kept_words[src])))
            planted.append((ids[src], copy_id, "exact"))
        else:
            target = levels[k % len(levels)]
            rows.append((copy_id, core.render(core.edited_copy(rng, kept_words[src], vocab, target, NGRAM))))
            planted.append((ids[src], copy_id, f"{target:.2f}"))
    rng.shuffle(rows)
    texts = {}
    with open(path, "w", encoding="utf-8") as f:
        for item_id, turns in rows:
            messages = [{"role": "user" if j % 2 == 0 else "assistant", "content": t} for j, t in enumerate(turns)]
            f.write(json.dumps({"id": item_id, "messages": messages, "source": "bench"}) + "\n")
            texts[item_id] = "\n".join(turns)
    return texts, planted


# Runs one command and prints {"wall", "maxrss_kb", "code"}: a fresh, small process starts the measured one,
# because Linux carries the parent's RSS at fork into the child's ru_maxrss, and this benchmark holds the
# whole corpus in memory.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "wb"), stderr=subprocess.STDOUT).returncode
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "code": code, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}))
"""


def run_cli(pythonpath: Path, corpus: Path, out: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, last line said) of one `dedup` child process."""
    for stale in out.parent.glob(out.stem + "*"):
        stale.unlink()
    log = out.with_name("child.log")
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    command = [sys.executable, "-m", "synth_empathy", "dedup", str(corpus), "--out", str(out)]
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(log), *command], env=env, cwd=out.parent,
                          capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout)
    text = log.read_text(encoding="utf-8", errors="replace").strip()
    if measured["code"] != 0:
        raise SystemExit(f"dedup exited {measured['code']}: {text[-2000:]}")
    return measured["wall"], measured["cpu"], measured["maxrss_kb"] / 1024, text.splitlines()[-1] if text else ""


def _plain(item_id: str) -> str:
    return item_id[len("chat-"):] if item_id.startswith("chat-") else item_id


def read_outcome(out: Path) -> tuple[set[str], dict[str, str], dict[str, str]]:
    """(kept ids, {dropped id: keeper id}, {dropped id: reason}) from either output layout, in the input's ids."""
    kept = {_plain(json.loads(line)["id"]) for line in out.read_text(encoding="utf-8").splitlines() if line}
    keeper, reason = {}, {}
    for line in out.with_name(out.stem + ".duplicates.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        item = _plain(rec["id"])
        if "duplicate_of" in rec:
            keeper[item], reason[item] = str(rec["duplicate_of"]), rec["reasons"][0]
        else:  # internal Rejection: "duplicates chat-X (Jaccard 0.83)"
            keeper[item], reason[item] = _plain(rec["detail"].split()[1]), rec["reasons"][0]
    return kept, keeper, reason


def quality(texts: dict[str, str], planted: list[tuple[str, str, str]], out: Path) -> dict:
    kept, keeper, reason = read_outcome(out)
    assert len(kept) + len(keeper) == len(texts), "every input record is kept or reported"
    above, below = [0, 0], [0, 0]
    for orig, copy, label in planted:
        together = keeper.get(orig, orig) == keeper.get(copy, copy)
        if label == "exact":
            above[0] += together
            above[1] += 1
            continue
        bucket = above if core.exact_jaccard(texts[orig], texts[copy], NGRAM) >= THRESHOLD else below
        bucket[0] += together
        bucket[1] += 1
    correct = 0
    for item, kept_id in keeper.items():
        a, b = texts[item], texts[kept_id]
        if reason[item] == "exact_duplicate":
            correct += core._PUNCT.sub("", a.lower()).split() == core._PUNCT.sub("", b.lower()).split()
        else:
            correct += core.exact_jaccard(a, b, NGRAM) >= THRESHOLD
    return {"recall": above[0] / above[1], "found": above, "below": below,
            "precision": correct / len(keeper) if keeper else 1.0, "correct": correct, "reported": len(keeper)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each code path (interleaved)")
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--baseline", type=Path, help="another checkout to run the same command from, side by side")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_dedup_cli.") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        t0 = time.perf_counter()
        texts, planted = write_corpus(corpus, args.n, args.seed)
        gen_s = time.perf_counter() - t0
        mb = corpus.stat().st_size / 2**20
        words = statistics.mean(len(t.split()) for t in list(texts.values())[:1000])
        paths = {"this tree": REPO}
        if args.baseline:
            paths = {f"baseline ({args.baseline})": args.baseline.resolve(), **paths}
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
        quality_of: dict[str, dict] = {}
        naive_rates = []
        for _ in range(args.repeat):
            for name, path in paths.items():
                out = work / name.split()[0] / "kept.jsonl"
                out.parent.mkdir(exist_ok=True)
                wall, cpu, rss, said = run_cli(path, corpus, out)
                runs[name].append((wall, cpu, rss))
                print(f"{name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:,.0f} MB peak RSS; {said}", flush=True)
                quality_of[name] = quality(texts, planted, out)
            sample = list(texts.values())[: args.naive_sample]
            naive_rates.append(core.naive_docs_per_s(sample, NUM_PERM, NGRAM))
            print(f"naive loop: {naive_rates[-1]:,.0f} dialogues/s", flush=True)

    load_end = os.getloadavg()[0]
    naive = statistics.median(naive_rates)
    header = "| Measure | " + " | ".join(paths) + " | Target |"
    rows = [header, "|---|" + "---|" * len(paths) + "---|"]

    def row(label: str, cells: list[str], target: str = "") -> None:
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    best = {name: min(w for w, _, _ in r) for name, r in runs.items()}
    row("Wall time of the command, best (all runs)",
        [f"{best[n]:.2f} s ({', '.join(f'{w:.2f}' for w, _, _ in r)})" for n, r in runs.items()], "< 15 s")
    row("CPU time of the command (user + sys), best (all runs)",
        [f"{min(c for _, c, _ in r):.2f} s ({', '.join(f'{c:.2f}' for _, c, _ in r)})" for r in runs.values()])
    row("Peak RSS of the child, max (all runs)",
        [f"{max(m for _, _, m in r):,.0f} MB ({', '.join(f'{m:,.0f}' for _, _, m in r)})" for r in runs.values()],
        "< 1,500 MB")
    row("Dialogues/s, best run", [f"{args.n / best[n]:,.0f}" for n in runs])
    row(f"Speed-up over the naive loop ({naive:,.0f} dialogues/s, median of {len(naive_rates)})",
        [f"{args.n / best[n] / naive:.1f}x" for n in runs], ">= 20x")
    row(f"Recall, planted exact copies and near pairs with exact Jaccard >= {THRESHOLD}",
        [f"{q['recall']:.4f} ({q['found'][0]:,}/{q['found'][1]:,})" for q in quality_of.values()], "unchanged")
    row(f"Planted pairs below {THRESHOLD} reported", [f"{q['below'][0]:,}/{q['below'][1]:,}"
                                                     for q in quality_of.values()], "0")
    row("Precision (string Jaccard re-check)",
        [f"{q['precision']:.4f} ({q['correct']:,}/{q['reported']:,})" for q in quality_of.values()], "unchanged")
    if args.baseline:
        (old, old_runs), (_, new_runs) = runs.items()
        old_cpu, new_cpu = min(c for _, c, _ in old_runs), min(c for _, c, _ in new_runs)
        rows.append(f"| Baseline / this tree, best wall and best CPU | {best[old] / best['this tree']:.2f}x wall, "
                    f"{old_cpu / new_cpu:.2f}x CPU |  |  |")
    body = (
        f"Command: `nice -n 10 python benchmarks/bench_dedup_cli.py --n {args.n} --repeat {args.repeat}"
        + (" --baseline DIR" if args.baseline else "") + f"` (seed {args.seed})  \n"
        f"Date: {stamp()}  \n"
        f"Machine: {core.machine()}; shared with other jobs (1-minute load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end), so runs are interleaved and the best is reported\n\n"
        + "\n".join(rows) + "\n\n"
        f"Corpus: {args.n:,} chat-JSONL records ({mb:,.0f} MB, {words:.0f} words a dialogue), the generator and "
        "planted copies of the Dedup benchmark. Each run is `python -m synth_empathy dedup corpus.jsonl --out "
        "kept.jsonl` in a child process (interpreter start-up included). "
        f"Writing the corpus took {gen_s:.1f} s and is not timed.\n"
    )
    print(body)
    if not args.no_write:
        write_section("Dedup: the command on a chat JSONL", body)
        print("wrote the 'Dedup: the command on a chat JSONL' section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
