"""Throughput of generation on Ray with 1 and 2 workers (actors) against the mock endpoint.

    python benchmarks/bench_ray.py [--latency 0.25] [--concurrency 8] [--n 48] [--workers 1 2]

One local Ray instance (`ray.init(num_cpus=2)`) and one mock endpoint process (benchmarks/mock_endpoint.py)
serve every run. Each run is `run_generate(..., executor=RayExecutor(workers=W))` into a fresh folder, with
the shipped catalogs and the default dialogue settings, `concurrency` dialogues in flight per worker. The
endpoint is latency-bound, so W workers should give about W times the request rate. Rates are the
endpoint's: (requests - 1) / (last - first arrival), so Ray's actor start-up (seconds: each actor imports
dspy) is not in them; the wall time includes it. Prints a markdown table and writes the "Ray" section of
BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ray  # noqa: E402
from mock_endpoint import MockEndpoint  # noqa: E402
from report_section import machine, stamp, write_section  # noqa: E402

from synth_empathy.config import load_config  # noqa: E402
from synth_empathy.run.generate import run_generate  # noqa: E402
from synth_empathy.run.ray_engine import RayExecutor  # noqa: E402


def run(endpoint: MockEndpoint, out: Path, n: int, concurrency: int, workers: int) -> dict:
    config = load_config(None, {"n": n, "concurrency": concurrency, "engine": "ray",
                                "model": {"backend": "openai", "model": "bench-gen", "api_base": endpoint.base_url}})
    endpoint.reset()
    wall = time.perf_counter()
    manifest = run_generate(config, out, executor=RayExecutor(workers=workers))
    wall = time.perf_counter() - wall
    stats = endpoint.stats()
    return {"rate": stats["rate"], "calls": stats["chat"], "wall": wall, "kept": manifest.counts["kept"],
            "rejected": manifest.counts["rejected"],
            "manifest_calls": sum(u.calls for u in manifest.usage.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=8, help="dialogues in flight per worker")
    parser.add_argument("--n", type=int, default=48, help="dialogues per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    ray.init(num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False)
    try:
        with MockEndpoint(latency_s=args.latency) as endpoint, tempfile.TemporaryDirectory() as tmp:
            results = {}
            for w in args.workers:
                results[w] = run(endpoint, Path(tmp) / f"w{w}", args.n, args.concurrency, w)
                print(f"workers={w}: {results[w]['rate']:.2f} req/s, {results[w]['wall']:.1f} s wall")
    finally:
        ray.shutdown()
    base = results[args.workers[0]]["rate"]
    lines = ["| Workers | Endpoint req/s | Speed-up | Ideal req/s (W x C / latency) | Wall time incl. actor start | "
             "Calls (endpoint / manifest) | Kept / rejected |", "|---|---|---|---|---|---|---|"]
    for w, r in results.items():
        lines.append(f"| {w} | {r['rate']:.2f} | {r['rate'] / base:.2f}x | {w * args.concurrency / args.latency:.1f} | "
                     f"{r['wall']:.1f} s | {r['calls']:,} / {r['manifest_calls']:,} | {r['kept']} / {r['rejected']} |")
    body = (f"Command: `python benchmarks/bench_ray.py --latency {args.latency} --concurrency {args.concurrency} "
            f"--n {args.n} --workers {' '.join(map(str, args.workers))}`  \nDate: {stamp()}  \n"
            f"Machine: {machine()}, ray {ray.__version__}\n\n"
            f"`generate` on a local Ray instance (`ray.init(num_cpus={max(args.workers)})`) with "
            f"`RayExecutor(workers=W)`: "
            f"{args.n} dialogues from the shipped catalogs, default dialogue settings (18 calls a dialogue), "
            f"{args.concurrency} dialogues in flight per worker, against the mock endpoint (tests/fake_openai.py "
            f"in its own process, {args.latency * 1000:.0f} ms per call). Request rates are the endpoint's, "
            f"(requests - 1) / (last - first arrival): actor start-up is outside them, inside the wall time.\n\n"
            + "\n".join(lines) + "\n")
    print(body)
    if not args.no_write:
        write_section("Ray", body)
        print("wrote the Ray section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
