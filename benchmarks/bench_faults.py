"""`synth-empathy generate` against an endpoint that fails: every seed must still end as exactly one record.

    python benchmarks/bench_faults.py [--n 48] [--concurrency 16] [--latency 0.1] [--retry-after 1] [--no-write]

The mock endpoint (benchmarks/mock_endpoint.py) answers 10% of calls with 429 + Retry-After, 5% with
500, 5% with a malformed 200 body, and lets 2% hang for `--hang-s` seconds, past the per-attempt
timeout (`timeout_s = 2`). `generate` runs as a subprocess with the default retry settings, then once
more against a fault-free endpoint for comparison. Checks: the run finishes, every planned seed is
exactly one valid record, and the manifest's retries match the failed attempts the endpoint saw.
Prints a markdown table and writes the "Runtime: faults" section of BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_endpoint import MockEndpoint  # noqa: E402
from report_section import machine, stamp, write_section  # noqa: E402

from synth_empathy.config import load_config  # noqa: E402
from synth_empathy.graphs.catalog import load_catalog  # noqa: E402
from synth_empathy.graphs.sampler import plan_seeds  # noqa: E402
from synth_empathy.schema import Dialogue, Manifest, Rejection  # noqa: E402

FAULTS = {"429": 0.10, "500": 0.05, "malformed": 0.05, "hang": 0.02}
TIMEOUT_S = 2.0


def run_generate(endpoint: MockEndpoint, out: Path, n: int, concurrency: int) -> tuple[int, float, str]:
    config = out.parent / f"{out.name}.toml"
    config.write_text(f"[model]\ntimeout_s = {TIMEOUT_S}\n")
    cmd = [sys.executable, "-m", "synth_empathy", "generate", "-n", str(n), "--out", str(out), "--config",
           str(config), "--concurrency", str(concurrency), "--backend", "openai", "--model", "bench-gen",
           "--api-base", endpoint.base_url]
    endpoint.reset()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": "sk-bench"},
                          cwd=REPO)
    return proc.returncode, time.perf_counter() - start, (proc.stdout.strip().splitlines() or [""])[-1]


def check(out: Path, n: int) -> dict:
    """Every planned seed exactly once, every line a valid record."""
    records, invalid = [], 0
    for name, model in (("dialogues.jsonl", Dialogue), ("rejected.jsonl", Rejection)):
        for line in (out / name).read_text().splitlines():
            try:
                records.append(model.model_validate_json(line))
            except ValueError:
                invalid += 1
    planned = {s.id for s in plan_seeds(load_catalog(load_config().personas_dir, load_config().scenarios_dir), n, 0)}
    ids = [r.id for r in records]
    rejected = [r for r in records if isinstance(r, Rejection)]
    return {"records": len(records), "unique": len(set(ids)), "invalid": invalid, "planned_match": set(ids) == planned,
            "kept": len(records) - len(rejected),
            "rejected_by": Counter(f"{r.stage}:{','.join(r.reasons)}" for r in rejected),
            "errors": Counter(r.detail.split(":")[0] for r in rejected if r.stage == "generate"),
            "manifest": Manifest.model_validate_json((out / "manifest.json").read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--hang-s", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with MockEndpoint(latency_s=args.latency, fault_rates=FAULTS, hang_s=args.hang_s,
                          retry_after=args.retry_after) as endpoint:
            code, wall, summary = run_generate(endpoint, Path(tmp) / "faults", args.n, args.concurrency)
            server = endpoint.stats()
        with MockEndpoint(latency_s=args.latency) as endpoint:
            clean_code, clean_wall, clean_summary = run_generate(endpoint, Path(tmp) / "clean", args.n,
                                                                 args.concurrency)
            clean_server = endpoint.stats()
        result = check(Path(tmp) / "faults", args.n)
    manifest: Manifest = result["manifest"]
    counters = server["counters"]
    # Not chat - ok: a hung request still answers 200 once its hang ends, long after the client gave up.
    failed_attempts = sum(counters.get(k, 0) for k in ("status_429", "status_500", "malformed", "hang"))
    retries = {stage: u.retries for stage, u in manifest.usage.items()}
    rows = [
        ("Exit code (faults / fault-free)", f"{code} / {clean_code}", "0 = finished"),
        ("Planned seeds / records / distinct ids / invalid lines",
         f"{args.n} / {result['records']} / {result['unique']} / {result['invalid']}",
         "ids = the plan's ids" if result["planned_match"] else "**ids differ from the plan**"),
        ("Kept / rejected", f"{result['kept']} / {result['records'] - result['kept']}",
         ", ".join(f"{k} {v}" for k, v in sorted(result["rejected_by"].items())) or "none rejected"),
        ("Dialogues failed after all retries (rejected, error class)", str(sum(result["errors"].values())),
         ", ".join(f"{k} {v}" for k, v in result["errors"].items()) or "none"),
        ("Endpoint: attempts / answered 200 (incl. hangs that ended)",
         f"{server['chat']:,} / {counters.get('ok', 0):,}",
         f"fault-free run: {clean_server['chat']:,} / {clean_server['counters'].get('ok', 0):,}"),
        ("Endpoint: 429 / 500 / malformed / hang",
         " / ".join(str(counters.get(k, 0)) for k in ("status_429", "status_500", "malformed", "hang")),
         f"Retry-After: {args.retry_after} s on 429s; hangs {args.hang_s:g} s > timeout {TIMEOUT_S:g} s"),
        ("Failed attempts seen by the endpoint / retries in the manifest",
         f"{failed_attempts} / {sum(retries.values())}",
         ", ".join(f"{k} {v}" for k, v in retries.items())),
        ("Wall time (faults / fault-free)", f"{wall:.1f} s / {clean_wall:.1f} s",
         f"{summary.split(' ->')[0]}; fault-free: {clean_summary.split(' ->')[0]}"),
    ]
    table = "| Measure | Result | Note |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    body = (f"Command: `python benchmarks/bench_faults.py --n {args.n} --concurrency {args.concurrency} --latency "
            f"{args.latency} --retry-after {args.retry_after} --hang-s {args.hang_s:g}`  \nDate: {stamp()}  \n"
            f"Machine: {machine()}\n\nFaults drawn per attempt: {json.dumps(FAULTS)}; default retry settings "
            f"(retries 3, rate_limit_retries 8, backoff_s 0.5), timeout_s {TIMEOUT_S:g}; the shipped catalogs "
            f"and dialogue settings (18 calls a dialogue).\n\n{table}\n\nThe faulty run is paced by its 429s: each "
            f"Retry-After holds back every new call to the endpoint and halves the in-flight bound (AIMD, once per "
            f"window), which grows back by one per window of successes; each hang costs one timeout.\n")
    print(body)
    if not args.no_write:
        write_section("Runtime: faults", body)
        print("wrote the Runtime: faults section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
