"""Peak memory of `synth-empathy generate` as n grows: it should stay flat, not grow with every dialogue.

    python benchmarks/bench_memory.py [--sizes 1000 10000] [--concurrency 8] [--latency 0] [--with-history]
                                      [--baseline REF]

Each size runs `synth-empathy generate -n N --backend openai` as a subprocess (as a user would) against the
mock endpoint (benchmarks/mock_endpoint.py, in its own process), one exchange per dialogue and no critique
round (four LM calls a dialogue), and reads the child's peak RSS from the kernel (`os.wait4`, ru_maxrss).
With `--with-history` every size also runs with `[run] lm_history = true`, DSPy's per-call LM history left
on as it was before issue 12; with `--baseline REF` every size also runs the code of git revision REF (checked
out into a temporary worktree), so before and after are measured side by side in one run. Prints a markdown
table with the ratio of the largest size's peak to the smallest's (target: at most 1.2x) and writes the
"Runtime: memory" section of BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_endpoint import MockEndpoint  # noqa: E402
from report_section import machine, stamp, worktree, write_section  # noqa: E402


def peak_rss_mb(n: int, out: Path, endpoint: str, concurrency: int, history: bool,
                code: Path = REPO) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, the command's last stdout line) of one generate run."""
    config = out.parent / f"{out.name}.toml"
    config.write_text("[dialogue]\nmin_turns = 1\nmax_turns = 1\ncritique_rounds = 0\n"
                      f"[run]\nlm_history = {'true' if history else 'false'}\n")
    cmd = [sys.executable, "-m", "synth_empathy", "generate", "-n", str(n), "--out", str(out), "--config", str(config),
           "--concurrency", str(concurrency), "--backend", "openai", "--model", "bench-gen", "--api-base", endpoint]
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": str(code)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    counts = [line.split(" -> ")[0] for line in stdout.splitlines() if " kept" in line]
    return usage.ru_maxrss / 1024, elapsed, counts[-1] if counts else f"exit {proc.returncode}"  # ru_maxrss: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--with-history", action="store_true", help="also run with DSPy's LM history on (before)")
    parser.add_argument("--baseline", metavar="REF", help="also run git revision REF (before), side by side")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        settings = [("this tree", REPO, False)]
        if args.with_history:
            settings.append(("this tree, `lm_history = true` (DSPy history on, as before issue 12)", REPO, True))
        if args.baseline:
            settings.insert(0, (f"`{args.baseline}` (before)", stack.enter_context(worktree(args.baseline)), False))
        endpoint = stack.enter_context(MockEndpoint(latency_s=args.latency))
        rows: dict[str, list[tuple[int, float, float, str]]] = {}
        for n in args.sizes:
            for label, code, history in settings:
                out = Path(tmp) / f"run-{n}-{len(rows.get(label, []))}-{abs(hash(label))}"
                rss, seconds, line = peak_rss_mb(n, out, endpoint.base_url, args.concurrency, history, code)
                rows.setdefault(label, []).append((n, rss, seconds, line))
                print(f"{label}: n={n:,} peak RSS {rss:,.0f} MB in {seconds:,.0f} s ({line})", flush=True)
    small, large = min(args.sizes), max(args.sizes)
    table = ["| code | n | peak RSS (MB) | wall (s) | result |", "| --- | ---: | ---: | ---: | --- |"]
    ratios = []
    for label, measured in rows.items():
        table += [f"| {label} | {n:,} | {rss:,.0f} | {s:,.0f} | {line} |" for n, rss, s, line in measured]
        peak = {n: rss for n, rss, _, _ in measured}
        ratios.append(f"{label}: peak at n = {large:,} is {peak[large] / peak[small]:.2f}x the peak at "
                      f"n = {small:,}")
    body = "\n".join([
        f"{stamp()}; {machine()}.", "",
        "`python benchmarks/bench_memory.py " + " ".join(sys.argv[1:]) + "`: `generate` as a subprocess against the "
        f"mock endpoint (latency {args.latency:g} s, concurrency {args.concurrency}), one exchange per dialogue, no "
        "critique (4 LM calls a dialogue); peak RSS of the generate process from the kernel (ru_maxrss). "
        "Target: peak at the largest n within 1.2x of the smallest.", "",
        *table, "", *[f"- {r}" for r in ratios]])
    print("\n" + body)
    if not args.no_write:
        write_section("Runtime: memory", body)


if __name__ == "__main__":
    main()
