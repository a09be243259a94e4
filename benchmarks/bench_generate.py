"""Throughput of `synth-empathy generate` against a mock endpoint, next to a bare async `openai` client.

    python benchmarks/bench_generate.py [--latency 0.25] [--concurrency 16 [64 ...]] [--n 128] [--bare-s 20]

The mock endpoint (benchmarks/mock_endpoint.py: tests/fake_openai.py in its own process) answers every
call after `--latency` seconds. In one run of this script, against the same endpoint process:

1. a bare `openai.AsyncOpenAI` client keeps C requests in flight for `--bare-s` seconds;
2. `generate -n N --concurrency C --backend openai` runs in this process (the typer command itself,
   after a 2-dialogue warm-up), with the shipped catalogs and the default dialogue settings;
3. the bare client again.

The endpoint's own request log gives each phase's request rate: (requests - 1) / (last - first arrival),
tail of the run included. The pipeline's CPU time per LM call is this process's CPU time during step 2
over the calls the endpoint answered. Prints a markdown table and writes the "Runtime: throughput"
section of BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai  # noqa: E402
from mock_endpoint import MockEndpoint  # noqa: E402
from report_section import machine, stamp, write_section  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from synth_empathy.cli import app  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a warm listener."},
            {"role": "user", "content": "I lost my job at the warehouse and I cannot stop replaying the call."}]


async def _bare(base_url: str, in_flight: int, seconds: float) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    stop = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await client.chat.completions.create(model="bench-gen", messages=MESSAGES)
            done += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    await client.close()
    return done


def bare_client(endpoint: MockEndpoint, in_flight: int, seconds: float) -> dict:
    endpoint.reset()
    cpu = time.process_time()
    calls = asyncio.run(_bare(endpoint.base_url, in_flight, seconds))
    cpu = time.process_time() - cpu
    stats = endpoint.stats()
    return {"rate": stats["rate"], "calls": calls, "cpu_ms": 1000 * cpu / calls}


def generate(endpoint: MockEndpoint, out: Path, n: int, concurrency: int) -> dict:
    args = ["generate", "-n", str(n), "--out", str(out), "--concurrency", str(concurrency), "--backend", "openai",
            "--model", "bench-gen", "--api-base", endpoint.base_url]
    endpoint.reset()
    cpu, wall = time.process_time(), time.perf_counter()
    result = CliRunner().invoke(app, args)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.exit_code != 0:
        raise SystemExit(f"generate failed ({result.exit_code}): {result.output[-2000:]}")
    stats = endpoint.stats()
    ok = stats["counters"].get("ok", 0)
    return {"rate": stats["rate"], "calls": stats["chat"], "ok": ok, "cpu_ms": 1000 * cpu / ok, "wall": wall,
            "summary": result.stdout.strip().splitlines()[-1]}


def measure(endpoint: MockEndpoint, tmp: Path, c: int, n: int, bare_s: float) -> dict:
    generate(endpoint, tmp / f"warm-up-{c}", 2, c)
    before = bare_client(endpoint, c, bare_s)
    print(f"C={c} bare client: {before['rate']:.2f} req/s")
    run = generate(endpoint, tmp / f"run-{c}", n, c)
    print(f"C={c} generate: {run['rate']:.2f} req/s, {run['summary']}")
    after = bare_client(endpoint, c, bare_s)
    print(f"C={c} bare client again: {after['rate']:.2f} req/s")
    return {"before": before, "run": run, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16], help="one or more C")
    parser.add_argument("--n", type=int, default=128, help="dialogues")
    parser.add_argument("--bare-s", type=float, default=20.0, help="seconds of each bare-client phase")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    with MockEndpoint(latency_s=args.latency) as endpoint, tempfile.TemporaryDirectory() as tmp:
        results = {c: measure(endpoint, Path(tmp), c, args.n, args.bare_s) for c in args.concurrency}

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(c, r) for c, r in results.items()) + " |"

    def best(r: dict) -> float:
        return max(r["before"]["rate"], r["after"]["rate"])

    rows = [
        row("Bare `AsyncOpenAI`, C requests in flight, before: endpoint req/s",
            lambda c, r: f"{r['before']['rate']:.2f} ({r['before']['calls']:,} calls in {args.bare_s:g} s)"),
        row("Bare `AsyncOpenAI`, after: endpoint req/s",
            lambda c, r: f"{r['after']['rate']:.2f} ({r['after']['calls']:,} calls in {args.bare_s:g} s)"),
        row("`generate --concurrency C`: endpoint req/s, whole run incl. tail",
            lambda c, r: f"{r['run']['rate']:.2f} ({r['run']['calls']:,} calls, {r['run']['wall']:.1f} s; "
                         f"{r['run']['summary'].split(' ->')[0]})"),
        row("**generate / the better bare run** (target >= 90% at C = 16)",
            lambda c, r: f"**{r['run']['rate'] / best(r):.1%}**"),
        row("Ideal, C / latency: req/s",
            lambda c, r: f"{c / args.latency:.2f} (bare {best(r) * args.latency / c:.1%}, "
                         f"generate {r['run']['rate'] * args.latency / c:.1%} of it)"),
        row("Pipeline CPU time per LM call (this process, all threads)",
            lambda c, r: f"{r['run']['cpu_ms']:.2f} ms ({r['run']['cpu_ms'] * r['run']['rate'] / 10:.0f}% "
                         f"of one core at its rate)"),
        row("Bare client CPU time per call, for scale", lambda c, r: f"{r['before']['cpu_ms']:.2f} ms"),
    ]
    header = "| Measure | " + " | ".join(f"C = {c}" for c in results) + " |\n|---|" + "---|" * len(results)
    table = header + "\n" + "\n".join(rows)
    body = (f"Command: `python benchmarks/bench_generate.py --latency {args.latency} --concurrency "
            f"{' '.join(map(str, args.concurrency))} --n {args.n} --bare-s {args.bare_s:g}`  \nDate: {stamp()}  \n"
            f"Machine: {machine()}\n\n"
            f"Mock endpoint: tests/fake_openai.py in its own process, {args.latency * 1000:.0f} ms per call, no "
            f"faults. `generate` (the typer command, in this process, after a 2-dialogue warm-up) runs "
            f"{args.n} dialogues from the shipped catalogs with the default dialogue settings (3 exchanges, "
            f"1 critique round: 18 calls a dialogue), dialogues on threads, every call through ResilientEngine "
            f"and the AIMD limiter. Request rates are the endpoint's: (requests - 1) / (last - first arrival).\n\n"
            f"{table}\n\nThe target compares the two at C = 16. At larger C a bare client on this 2-CPU machine can "
            f"stall before the endpoint does (compare its CPU time per call); the Ideal row says how close each "
            f"gets to C / latency.\n")
    print(body)
    if not args.no_write:
        write_section("Runtime: throughput", body)
        print("wrote the Runtime: throughput section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
