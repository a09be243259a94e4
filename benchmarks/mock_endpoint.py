"""A mock OpenAI-compatible endpoint for the runtime benchmarks, run in its own process.

    python benchmarks/mock_endpoint.py [--latency 0.25] [--fault-rates '{"429": 0.1}'] [--hang-s 3]

It is tests/fake_openai.py's FakeOpenAIServer (latency and fault injection) with a responder that
writes varied prose (so dedup keeps the dialogues) and schema-valid JSON (judge scores 8, so the judge
keeps them). In its own process it does not share the benchmark's GIL. It prints its base URL, then
answers commands on stdin, one a line: `stats` prints a JSON line of counters and request times,
`reset` forgets them, end of input stops it. `MockEndpoint` drives it from a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fake_openai import FakeOpenAIServer, keeping_responder  # noqa: E402


class MockEndpoint:
    """The mock endpoint in a child process; `stats()` reads its counters."""

    def __init__(self, latency_s: float = 0.25, fault_rates: dict[str, float] | None = None,
                 hang_s: float = 5.0, retry_after: str = "0", seed: int = 0) -> None:
        cmd = [sys.executable, __file__, "--latency", str(latency_s), "--fault-rates", json.dumps(fault_rates or {}),
               "--hang-s", str(hang_s), "--retry-after", retry_after, "--seed", str(seed)]
        # stderr dropped: a client killed mid-call resets its connection, and the stdlib server prints that.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        self.base_url = self.proc.stdout.readline().strip()
        self._lock = threading.Lock()

    def _ask(self, command: str) -> str:
        with self._lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            return self.proc.stdout.readline()

    def stats(self) -> dict:
        return json.loads(self._ask("stats"))

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def __enter__(self) -> MockEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stats(server: FakeOpenAIServer) -> dict:
    chats = server.chat_requests
    times = sorted(r.time for r in chats)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"chat": len(chats), "counters": dict(server.counters), "first": times[0] if times else None,
            "last": times[-1] if times else None, "rate": (len(times) - 1) / span if span else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--fault-rates", default="{}")
    parser.add_argument("--hang-s", type=float, default=5.0)
    parser.add_argument("--retry-after", default="0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    server = FakeOpenAIServer(keeping_responder, latency_s=args.latency, fault_rates=json.loads(args.fault_rates),
                              rate_hang_s=args.hang_s, rate_retry_after=args.retry_after, seed=args.seed)
    with server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(_stats(server)), flush=True)
            elif command == "reset":
                server.reset()
                print("{}", flush=True)


if __name__ == "__main__":
    main()
