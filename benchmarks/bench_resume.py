"""Kill and resume: `generate` killed with SIGKILL at random moments, rerun into the same --out each time.

    python benchmarks/bench_resume.py [--n 800] [--kills 20] [--concurrency 8] [--latency 0.02] [--seed 0]
                                      [--tear-every 5]

Each round starts `synth-empathy generate` as a subprocess against the mock endpoint
(benchmarks/mock_endpoint.py) and SIGKILLs it after a random delay (uniform over `--kill-window`
seconds, process start-up included, so some kills land before the first record, some mid-write). Before
each restart the files' last bytes are inspected for a torn line, and after every `--tear-every`th kill the
last record is cut in half on purpose (SIGKILL rarely lands inside a write). After `--kills` kills one last run
goes to the end. Checks: exactly N records, no duplicate id, the ids are the plan's, every line a valid
Dialogue or Rejection, the manifest's counts match. Prints a markdown table and writes the
"Runtime: kill and resume" section of BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_endpoint import MockEndpoint  # noqa: E402
from report_section import machine, stamp, write_section  # noqa: E402

from synth_empathy.config import load_config  # noqa: E402
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE, REJECTED_FILE  # noqa: E402
from synth_empathy.graphs.catalog import load_catalog  # noqa: E402
from synth_empathy.graphs.sampler import plan_seeds  # noqa: E402
from synth_empathy.schema import Dialogue, Manifest, Rejection  # noqa: E402


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def torn(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")


def tear(path: Path) -> None:
    """Cut the last record in half, as a power cut in the middle of its write would."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: start + (len(data) - start) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--kill-window", type=float, nargs=2, default=(1.0, 6.0), metavar=("FROM", "TO"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tear-every", type=int, default=5,
                        help="after every K-th kill, also cut the last record in half (a power cut mid-write)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    rounds: list[tuple[float, int, bool]] = []  # (killed after s, records after, a torn tail found)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, MockEndpoint(latency_s=args.latency) as endpoint:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "synth_empathy", "generate", "-n", str(args.n), "--out", str(out),
               "--concurrency", str(args.concurrency), "--backend", "openai", "--model", "bench-gen",
               "--api-base", endpoint.base_url]
        finished_early = False
        injected = 0
        for _ in range(args.kills):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
            delay = rng.uniform(*args.kill_window)
            try:
                proc.wait(timeout=delay)
                finished_early = True  # it ran to the end before the kill
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            tail_torn = torn(out / KEPT_FILE) or torn(out / REJECTED_FILE)
            rounds.append((delay, lines(out / KEPT_FILE) + lines(out / REJECTED_FILE), tail_torn))
            if args.tear_every and len(rounds) % args.tear_every == 0 and not tail_torn:
                tear(out / KEPT_FILE)
                injected += 1
            print(f"kill {len(rounds)} after {delay:.2f} s: {rounds[-1][1]} lines, torn tail: {tail_torn}")
        final = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        print(final.stdout.strip())

        records, invalid = [], 0
        for name, model in ((KEPT_FILE, Dialogue), (REJECTED_FILE, Rejection)):
            for line in (out / name).read_text().splitlines():
                try:
                    records.append(model.model_validate_json(line))
                except ValueError:
                    invalid += 1
        manifest = Manifest.model_validate_json((out / MANIFEST_FILE).read_text())
    config = load_config()
    planned = {s.id for s in plan_seeds(load_catalog(config.personas_dir, config.scenarios_dir), args.n, 0)}
    ids = [r.id for r in records]
    kills_mid_run = sum(1 for i, r in enumerate(rounds) if r[1] > (rounds[i - 1][1] if i else 0))
    rows = [
        ("Kills (SIGKILL) / after the run had written new records / before it had (start-up, first dialogues)",
         f"{len(rounds)} / {kills_mid_run} / {len(rounds) - kills_mid_run}",
         "a run finished before its kill" if finished_early else ""),
        ("Torn last lines: left by a kill / cut in half on purpose (all repaired on resume)",
         f"{sum(r[2] for r in rounds)} / {injected}", f"one record cut after every {args.tear_every} kills"),
        ("Records after each kill", ", ".join(str(r[1]) for r in rounds), ""),
        ("Final run exit code", str(final.returncode), final.stdout.strip().split(" ->")[0]),
        ("**Records / planned**", f"**{len(records)} / {args.n}**", "target: exactly N"),
        ("Duplicate ids", str(len(ids) - len(set(ids))), "target 0"),
        ("Ids equal the plan's", "yes" if set(ids) == planned else "**no**", ""),
        ("Invalid lines", str(invalid), "target 0"),
        ("Manifest kept + rejected / finished", f"{manifest.counts['kept'] + manifest.counts['rejected']} / "
         f"{'yes' if manifest.finished else 'no'}", ""),
        ("Total wall time", f"{time.perf_counter() - started:.0f} s", ""),
    ]
    table = "| Measure | Result | Note |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    body = (f"Command: `python benchmarks/bench_resume.py --n {args.n} --kills {args.kills} --concurrency "
            f"{args.concurrency} --latency {args.latency} --kill-window {args.kill_window[0]:g} "
            f"{args.kill_window[1]:g} --seed {args.seed} --tear-every {args.tear_every}`  \nDate: {stamp()}  \n"
            f"Machine: {machine()}\n\n"
            f"Each kill lands at a random moment of a run (start-up, about 3 s of imports, included); every "
            f"restart is the same command into the same --out. Shipped catalogs, default dialogue settings.\n\n"
            f"{table}\n")
    print(body)
    if not args.no_write:
        write_section("Runtime: kill and resume", body)
        print("wrote the Runtime: kill and resume section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
