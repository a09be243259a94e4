"""How much of each stage's prompt is a stable prefix that a provider's prompt cache would bill at a discount.

    python benchmarks/bench_prompt_cache.py [--n 4] [--exchanges 3]

Runs `generate` (3-exchange dialogues, the default critique round, the shipped catalogs) against
tests/fake_openai.py's FakeOpenAIServer in this process with its "cached_prefix" quirk: every completion
reports as `cached_tokens` the longest common prefix, in whitespace words, of its prompt with any earlier
prompt. That is a simple prefix-match model of a prompt cache: OpenAI's real cache starts at 1024 tokens and
grows in 128-token steps, so short prompts get less than this share there (and none under 1024 tokens); it
measures the upper bound the prompt layout allows. Dialogues run one at a time (concurrency 1), so each
prompt is compared with every prompt sent before it. Prints a table of calls, input tokens, cached tokens and
the cached share per stage and overall, and tokens per kept dialogue; writes the "Prompt caching: stable
prefix share" section of BENCHMARKS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAIServer, keeping_responder  # noqa: E402
from report_section import machine, stamp, write_section  # noqa: E402

from synth_empathy.config import load_config  # noqa: E402
from synth_empathy.run.generate import run_generate  # noqa: E402


def measure(n: int, exchanges: int) -> tuple[dict, object]:
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    with FakeOpenAIServer(keeping_responder, quirks={"cached_prefix"}) as server, \
            tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"n": n, "concurrency": 1,
                                 "dialogue": {"min_turns": exchanges, "max_turns": exchanges},
                                 "model": {"backend": "openai", "model": "bench", "api_base": server.base_url}})
        manifest = run_generate(cfg, Path(tmp) / "out")
    return manifest.usage, manifest


def table(usage: dict, manifest) -> str:
    rows = ["| stage | calls | input tokens | cached (prefix) | cacheable share |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, u in usage.items():
        rows.append(f"| {name} | {u.calls} | {u.input_tokens} | {u.cached_input_tokens} | {u.cached_share:.0%} |")
    inp = sum(u.input_tokens for u in usage.values())
    cached = sum(u.cached_input_tokens for u in usage.values())
    rows.append(f"| **all** | {sum(u.calls for u in usage.values())} | {inp} | {cached} | **{cached / inp:.0%}** |")
    kept = manifest.counts["kept"]
    rows.append("")
    rows.append(f"{kept} of {manifest.counts['planned']} dialogues kept; tokens per kept dialogue (input + output): "
                f"{manifest.tokens_per_kept}. Target: at least 50% of all input tokens a stable prefix.")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--exchanges", type=int, default=3)
    args = parser.parse_args()
    usage, manifest = measure(args.n, args.exchanges)
    body = table(usage, manifest)
    print(body)
    write_section("Prompt caching: stable prefix share", (
        f"`python benchmarks/bench_prompt_cache.py --n {args.n} --exchanges {args.exchanges}` ({stamp()}; "
        f"{machine()}). {args.exchanges}-exchange dialogues with one critique round against the fake endpoint; "
        "a completion's cached tokens are the longest word prefix its prompt shares with any earlier prompt "
        "(a simple prefix-match model; OpenAI caches from 1024 tokens in 128-token steps, so this is the "
        "upper bound the prompt layout allows).\n\n" + body))


if __name__ == "__main__":
    main()
