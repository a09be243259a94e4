"""Speed of the embedded llama.cpp backend: `generate -n N` end to end, before vs now, next to a plain loop.

    python benchmarks/bench_local.py [--n 3] [--repeat 3] [--baseline e7b8ef6] [--threads T] [--repack]

Each round of this script runs, each as a subprocess of the user's CLI path (`python -m synth_empathy generate
-n N --out DIR` with that revision's defaults; `[model] threads = T` for both when given):

1. **before**: the CLI of git revision `--baseline` (default e7b8ef6, the release before issue 11's speed work:
   one `create_chat_completion` at a time under a lock, llama-cpp-python keeping only the last prompt's KV,
   the shipped Q4_1 weights, `concurrency` 1), checked out into a temporary worktree;
2. **now**: this checkout's CLI and defaults (a Q8_0 copy of the model, batched decoding of the dialogues in
   flight, prefix reuse, lazy grammar), every request it sends recorded on the way;
3. **plain loop**: in this process, the prompts the run of 2. sent, replayed one call at a time with plain
   `Llama.create_chat_completion` on the shipped file and a fresh KV each call (`Llama.reset()`: no prefix
   reuse), same sampling settings and thread count.

Effective tokens per second = (prompt + output tokens) / wall time; for the pipeline runs from their
manifests (usage over `timings.generate_s`). Dialogues are sampled, so how many calls and tokens a run takes
varies from run to run: read each wall time with the work beside it, and the ratio over all rounds (`--repeat`)
rather than one round's. `--repack` adds prompt processing of a Q4_0 copy with llama.cpp's extra buffer types
off and on. Prints a markdown table and writes the "Local model: speed" section of BENCHMARKS.md. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_section import machine, stamp, worktree, write_section  # noqa: E402

SECTION = "Local model: speed"


def chat_call(request) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The messages and create_chat_completion arguments for a dspy Request, as the plain loop sends them."""
    from synth_empathy.lm.local import chat_messages

    messages = chat_messages(request)
    config = request.config
    kwargs: dict[str, Any] = {"temperature": 0.7 if config.temperature is None else config.temperature,
                              "max_tokens": config.max_tokens or 256, "repeat_penalty": 1.15}
    if config.top_p is not None:
        kwargs["top_p"] = config.top_p
    if config.seed is not None:
        kwargs["seed"] = config.seed
    if config.stop:
        kwargs["stop"] = list(config.stop)
    return messages, kwargs


def _cli(record: str, argv: list[str]) -> None:
    """Child process: this checkout's CLI, every request to the local engine recorded to `record`."""
    import synth_empathy.lm as lm
    from synth_empathy.cli import app

    inner = lm.LlamaEngine.complete
    lock = threading.Lock()
    log = open(record, "w", encoding="utf-8")  # noqa: SIM115 - open for the life of the process

    def complete(self, request):
        response = inner(self, request)
        messages, kwargs = chat_call(request)
        with lock:
            log.write(json.dumps({"messages": messages, "kwargs": kwargs,
                                  "response_format": request.config.response_format}) + "\n")
            log.flush()
        return response

    lm.LlamaEngine.complete = complete
    app(argv, prog_name="synth-empathy")


# Equal work for before and now: every dialogue runs exactly this many exchanges (unless it stalls), where the
# defaults let a seeker end after min_turns (2) and this checkout's seeker profiles make it end less often.
FIXED_TURNS = 2


def run_cli(code: Path | None, n: int, threads: int | None, work: Path, tag: str, fixed: bool = False) -> dict:
    """`generate -n n` with the CLI of the checkout at `code` (None: this one, recorded) in a subprocess;
    `fixed`: every dialogue FIXED_TURNS exchanges long."""
    out, record = work / f"{tag}-out", work / f"{tag}-requests.jsonl"
    args = ["generate", "-n", str(n), "--out", str(out)]
    settings = (f"[model]\nthreads = {threads}\n" if threads else "") + (
        f"[dialogue]\nmin_turns = {FIXED_TURNS}\nmax_turns = {FIXED_TURNS}\n" if fixed else "")
    if settings:
        cfg = work / f"{tag}.toml"
        cfg.write_text(settings)
        args += ["--config", str(cfg)]
    env = {**os.environ, "PYTHONPATH": str(code or REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "synth_empathy", *args] if code else [sys.executable, __file__, "--child",
                                                                       str(record), *args]
    wall = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code or REPO)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise SystemExit(f"{tag} generate failed ({proc.returncode}): {proc.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    usage = manifest["usage"].values()
    prompt = sum(u["input_tokens"] for u in usage)
    output = sum(u["output_tokens"] for u in usage)
    calls = sum(u["calls"] for u in usage)
    run_s = manifest["timings"]["generate_s"]
    return {"wall": wall, "run_s": run_s, "prompt": prompt, "output": output, "calls": calls,
            "tps": (prompt + output) / run_s, "kept": manifest["counts"]["kept"],
            "rejected": manifest["counts"]["rejected"], "concurrency": manifest["config"].get("concurrency"),
            "engine": manifest.get("local_engine"), "record": record}


def plain_loop(record: Path, threads: int | None) -> dict:
    """The recorded calls replayed with plain create_chat_completion, a fresh KV for each (no reuse)."""
    from llama_cpp import Llama

    from synth_empathy.lm import local

    threads = threads or max(1, os.cpu_count() or 1)
    with local.model_param_overrides(use_extra_bufts=False):
        llama = Llama(model_path=str(local.embedded_model_path()), n_ctx=4096, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    prompt = output = 0
    start = time.perf_counter()
    for call in calls:
        kwargs = dict(call["kwargs"])
        fmt = call["response_format"]
        if fmt is not None:
            kwargs["max_tokens"] = max(kwargs["max_tokens"], local.STRUCTURED_MIN_TOKENS)
            schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
            kwargs["response_format"] = {"type": "json_object"}
            if schema is not None:
                kwargs["response_format"]["schema"] = local.grammar_schema(schema)
        llama.reset()
        out = llama.create_chat_completion(messages=call["messages"], **kwargs)
        prompt += out["usage"]["prompt_tokens"]
        output += out["usage"]["completion_tokens"]
    wall = time.perf_counter() - start
    return {"wall": wall, "prompt": prompt, "output": output, "calls": len(calls), "tps": (prompt + output) / wall}


def repack(threads: int | None, work: Path, reps: int = 3) -> dict:
    """Prompt processing of a Q4_0 copy of the shipped model with weight repacking off and on."""
    from llama_cpp import Llama

    from synth_empathy.lm.local import embedded_model_path, model_param_overrides
    from synth_empathy.lm.requantize import quantize

    q4_0 = work / "model-q4_0.gguf"
    try:
        quantize(embedded_model_path(), q4_0, "LLAMA_FTYPE_MOSTLY_Q4_0", threads or 0)
    except OSError as exc:
        return {"error": str(exc)}
    text = "A friend wrote to say that the move went well and the new flat is bright. " * 40
    n_threads = threads or max(1, os.cpu_count() or 1)
    result: dict = {}
    for path, label in ((embedded_model_path(), "Q4_1 (shipped)"), (q4_0, "Q4_0 copy")):
        for extra in (False, True):
            with model_param_overrides(use_extra_bufts=extra):
                llama = Llama(model_path=str(path), n_ctx=2048, n_batch=512, n_threads=n_threads,
                              n_threads_batch=n_threads, verbose=False)
            tokens = llama.tokenize(text.encode())[:512]
            rates = []
            for _ in range(reps):
                llama.reset()
                start = time.perf_counter()
                llama.eval(tokens)
                rates.append(len(tokens) / (time.perf_counter() - start))
            result[(label, extra)] = max(rates)
            del llama
    return result


def fidelity(work: Path, threads: int | None, n_tokens: int = 600) -> dict[str, tuple[float, float]]:
    """How far the shipped Q4_1 file and its Q8_0 copy are from the exact dequantized (F16) weights: mean KL
    divergence of next-token distributions over README text, and how often their top token agrees."""
    import numpy as np
    from llama_cpp import Llama

    from synth_empathy.lm.local import embedded_model_path, model_param_overrides
    from synth_empathy.lm.requantize import quantize, requantized

    f16 = work / "model-f16.gguf"
    try:
        quantize(embedded_model_path(), f16, "LLAMA_FTYPE_MOSTLY_F16", threads or 0)
    except OSError:
        return {}
    text = (REPO / "README.md").read_text(encoding="utf-8")[:4000].encode()
    logprobs = {}
    for label, path in (("F16", f16), ("Q4_1 (shipped)", embedded_model_path()),
                        ("Q8_0 copy (the default)", requantized(embedded_model_path(), "q8_0"))):
        with model_param_overrides(use_extra_bufts=False):
            llama = Llama(model_path=str(path), n_ctx=1024, n_threads=threads or os.cpu_count() or 1,
                          logits_all=True, verbose=False)
        tokens = llama.tokenize(text)[:n_tokens]
        llama.eval(tokens)
        x = np.array(llama.scores[:llama.n_tokens], dtype=np.float64)
        x -= x.max(axis=1, keepdims=True)
        logprobs[label] = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        del llama
    ref = logprobs.pop("F16")
    return {label: (float((np.exp(ref) * (ref - lp)).sum(axis=1).mean()), float((lp.argmax(1) == ref.argmax(1)).mean()))
            for label, lp in logprobs.items()}


def _fmt_engine(stats: dict | None) -> str:
    if not stats:
        return ""
    (s,) = stats.values()
    sizes = ", ".join(f"{k}: {v}" for k, v in s["batch_sizes"].items())
    return (f"{s['cache_hits']}/{s['requests']} calls hit a cached prefix, {s['prefix_tokens_reused']:,} of "
            f"{s['prompt_tokens']:,} prompt tokens reused; {s['decode_calls']} decode calls, mean batch "
            f"{s['mean_batch_size']} (sequences per call: calls = {sizes}); weights: {s.get('weights')}; seconds "
            f"in decode calls with prompt tokens {s.get('prompt_decode_s')}, answer-only {s.get('answer_decode_s')}, "
            f"sampling {s.get('sample_s')}")


def _total(runs: list[dict]) -> dict:
    keys = [key for key in ("wall", "run_s", "prompt", "output", "calls", "kept", "rejected") if key in runs[0]]
    total = {key: sum(run[key] for run in runs) for key in keys}
    return total | {"tps": (total["prompt"] + total["output"]) / total.get("run_s", total["wall"])}


def _work(run: dict) -> str:
    return (f"{run['wall']:.1f} s ({run['calls']} calls, {run['prompt']:,} + {run['output']:,} tokens, "
            f"{run['kept']} kept / {run['rejected']} rejected)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="[model] threads for every path (default: llama.cpp's "
                    "engine default, one per CPU)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--baseline", default="e7b8ef6", help="git revision measured as before (default: %(default)s)")
    ap.add_argument("--repack", action="store_true")
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, worktree(args.baseline) as before:
        work = Path(tmp)
        for i in range(args.repeat):
            old = run_cli(before, args.n, args.threads, work, f"old{i}")
            new = run_cli(None, args.n, args.threads, work, f"new{i}")
            plain = plain_loop(new["record"], args.threads)
            old_fixed = run_cli(before, args.n, args.threads, work, f"old-fixed{i}", fixed=True)
            new_fixed = run_cli(None, args.n, args.threads, work, f"new-fixed{i}", fixed=True)
            rounds.append((old, new, plain, old_fixed, new_fixed))
            print(f"round {i + 1}: before {old['wall']:.1f} s ({old['calls']} calls), now {new['wall']:.1f} s "
                  f"({new['calls']} calls); now {new['tps']:.1f} tok/s, plain loop {plain['tps']:.1f} tok/s; "
                  f"{FIXED_TURNS} exchanges each: before {old_fixed['wall']:.1f} s ({old_fixed['calls']} calls), "
                  f"now {new_fixed['wall']:.1f} s ({new_fixed['calls']} calls)", flush=True)
        packed = repack(args.threads, work) if args.repack else None
        close = fidelity(work, args.threads)

    columns = rounds[:]
    if len(rounds) > 1:  # every round's work and time added up
        columns.append(tuple(_total([r[k] for r in rounds]) for k in range(5)))
    cols = [f"run {i + 1}" for i in range(len(rounds))] + (["all runs"] if len(rounds) > 1 else [])
    rows: list[tuple[str, list[str], str]] = []

    def row(name: str, values: list[str], target: str = "") -> None:
        rows.append((name, values, target))

    row(f"`generate` wall, before (`{args.baseline}`, its defaults; subprocess, start-up included)",
        [_work(o) for o, *_ in columns])
    row("`generate` wall, now (this checkout, defaults)",
        [_work(n) for _, n, *_ in columns])
    row("**before wall / now wall**", [f"**{o['wall'] / n['wall']:.2f}x**" for o, n, *_ in columns], ">= 2x")
    row(f"Equal work: `generate` wall with `[dialogue] min_turns = max_turns = {FIXED_TURNS}`, before",
        [_work(c[3]) for c in columns])
    row(f"Equal work: `generate` wall with `[dialogue] min_turns = max_turns = {FIXED_TURNS}`, now",
        [_work(c[4]) for c in columns])
    row("**Equal work: before wall / now wall**", [f"**{c[3]['wall'] / c[4]['wall']:.2f}x**" for c in columns],
        ">= 2x")
    row("Seconds per 1,000 tokens (prompt + output), defaults, before / now",
        [f"{1000 * o['wall'] / (o['prompt'] + o['output']):.2f} / {1000 * n['wall'] / (n['prompt'] + n['output']):.2f}"
         for o, n, *_ in columns])
    row("Pipeline effective tok/s, before (manifest: tokens / generate_s)",
        [f"{o['tps']:.1f} ({o['run_s']:.1f} s)" for o, *_ in columns])
    row("Pipeline effective tok/s, now", [f"{n['tps']:.1f} ({n['run_s']:.1f} s)" for _, n, *_ in columns])
    row("Plain loop tok/s: the calls of now's run replayed, `create_chat_completion` on the shipped file, fresh KV "
        "each", [f"{p['tps']:.1f} ({p['calls']} calls, {p['prompt']:,} + {p['output']:,} tokens, {p['wall']:.1f} s)"
                 for _, _, p, *_ in columns])
    row("**now pipeline tok/s / plain loop tok/s**", [f"**{n['tps'] / p['tps']:.2f}x**" for _, n, p, *_ in columns],
        ">= 1.5x")
    row("Local engine now, defaults (manifest `local_engine`)", [_fmt_engine(n["engine"]) for _, n, *_ in rounds])
    table = "| Measure | " + " | ".join(cols) + " | Target |\n|---|" + "---|" * len(cols) + "---|\n"
    table += "".join(f"| {name} | " + " | ".join(values) + f" | {target} |\n" for name, values, target in rows)
    if packed:
        table += ("\nPrompt processing (512 tokens, best of 3, tok/s) with llama.cpp's extra buffer types "
                  "(`[model] repack`):\n\n")
        table += "| Model | repack = false | repack = true |\n|---|---|---|\n"
        if "error" in packed:
            table += f"| Q4_0 copy | {packed['error']} | |\n"
        else:
            for label in ("Q4_1 (shipped)", "Q4_0 copy"):
                table += f"| {label} | {packed[(label, False)]:.1f} | {packed[(label, True)]:.1f} |\n"
    if close:
        table += ("\nThe weights run now against the exact dequantized (F16) weights of the shipped file, over "
                  "600 tokens of README text:\n\n| Weights | mean KL divergence (nats) | top token agrees |\n"
                  "|---|---|---|\n")
        table += "".join(f"| {label} | {kl:.4f} | {agree:.1%} |\n" for label, (kl, agree) in close.items())
    threads = args.threads or f"default ({os.cpu_count()})"
    cmd = " ".join(["python benchmarks/bench_local.py", *sys.argv[1:]])
    body = (f"Command: `{cmd}`  \nDate: {stamp()}  \nMachine: {machine()}; llama.cpp threads: {threads}; "
            f"load average at the end: {os.getloadavg()[0]:.1f}\n\n"
            f"Each `generate -n {args.n}` is the CLI in a subprocess with the shipped catalogs and that revision's "
            f"default settings: before is `{args.baseline}` checked out into a temporary worktree, now is this "
            "checkout. Dialogues are sampled, so how many calls and tokens a run takes differs from run to run "
            "(how long the seeker talks, whether the critic asks for a revision), and this checkout's seeker "
            "profiles (resistance, pushback) make a seeker end early less often than before: read each wall time "
            f"with the work beside it, the equal-work rows (every dialogue {FIXED_TURNS} exchanges, both revisions), "
            "and the all-runs column over a single round.\n\n" + table)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _cli(sys.argv[2], sys.argv[3:])
    else:
        main()
