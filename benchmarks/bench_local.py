"""Speed of the embedded llama.cpp backend: `generate -n N` end to end, old engine vs new, next to a plain loop.

    python benchmarks/bench_local.py [--n 3] [--threads T] [--repeat 1] [--repack]

In one run of this script, each as a subprocess running the user's CLI path (`python -m synth_empathy
generate -n N --out DIR`, default settings but `[model] threads = T` for both when given):

1. **old**: the engine of the previous release (`SerialLlamaEngine` below: one `create_chat_completion`
   at a time under a lock, llama-cpp-python keeping only the last prompt's KV), with `--concurrency 1`,
   the old default;
2. **new**: this checkout's engine and defaults (batched decoding of the dialogues in flight, prefix reuse);
3. **plain loop**: in this process, the prompts the new run sent (recorded on the way), replayed one call
   at a time with plain `Llama.create_chat_completion` on a fresh KV each call (`Llama.reset()`: no prefix
   reuse), same sampling settings and thread count.

Effective tokens per second = (prompt + output tokens) / wall time; for the pipeline runs from their
manifests (usage over `timings.generate_s`). With `--repack`, the shipped Q4_1 GGUF is requantized to a
Q4_0 copy in a temp dir (llama_model_quantize, allow_requantize) and its prompt processing is timed with
llama.cpp's extra buffer types (weight repacking) off and on. Prints a markdown table and writes the
"Local model: speed" section of BENCHMARKS.md. Nothing is asserted. The machine may be shared: figures
are comparative within one run; `--repeat 2` shows how stable they are.
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

from report_section import machine, stamp, write_section  # noqa: E402

SECTION = "Local model: speed"


class SerialLlamaEngine:
    """The local engine as it was before batching (commit e7b8ef6), kept here to measure against."""

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, repack: bool = False,
                 **_: Any):
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.repack = repack
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._llama = None
        self._lock = threading.Lock()

    def _model(self):
        from llama_cpp import Llama

        from synth_empathy.lm.local import model_param_overrides

        if self._llama is None:
            with model_param_overrides(use_extra_bufts=self.repack):
                # n_threads_batch too: the same threads as the new engine, whose comparison this is.
                self._llama = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                    n_threads_batch=self.n_threads, verbose=False)
        return self._llama

    def stats(self) -> dict:
        return {}

    def complete(self, request):
        from dspy.lm15 import Message, Response, Usage

        from synth_empathy.lm.local import STRUCTURED_MIN_TOKENS, grammar_schema

        messages, kwargs = chat_call(request)
        fmt = request.config.response_format
        if fmt is not None:
            schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
            kwargs["response_format"] = {"type": "json_object"}
            kwargs["max_tokens"] = max(kwargs["max_tokens"], STRUCTURED_MIN_TOKENS)
            if schema is not None:
                kwargs["response_format"]["schema"] = grammar_schema(schema)
        with self._lock:
            out = self._model().create_chat_completion(messages=messages, **kwargs)
        choice, usage = out["choices"][0], out.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        return Response(id=out.get("id"), model=self.model_path.name,
                        message=Message.assistant(choice["message"].get("content") or ""),
                        finish_reason=finish if finish in ("stop", "length") else "stop",
                        usage=Usage(input_tokens=usage.get("prompt_tokens"),
                                    output_tokens=usage.get("completion_tokens")))

    def stream(self, request):
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


def chat_call(request) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The messages and create_chat_completion arguments the old engine sent for a dspy Request."""
    messages: list[dict[str, str]] = []
    if request.system:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
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


def _cli(engine: str, record: str, argv: list[str]) -> None:
    """Child process: the CLI with the chosen engine class, every request recorded to `record`."""
    import synth_empathy.lm as lm
    from synth_empathy.cli import app

    cls = SerialLlamaEngine if engine == "old" else lm.LlamaEngine
    inner = cls.complete
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

    cls.complete = complete
    lm.LlamaEngine = cls
    app(argv, prog_name="synth-empathy")


def run_cli(engine: str, n: int, threads: int | None, work: Path, tag: str) -> dict:
    out, record = work / f"{tag}-out", work / f"{tag}-requests.jsonl"
    args = ["generate", "-n", str(n), "--out", str(out)]
    if engine == "old":
        args += ["--concurrency", "1"]  # the old default
    if threads:
        cfg = work / "threads.toml"
        cfg.write_text(f"[model]\nthreads = {threads}\n")
        args += ["--config", str(cfg)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    wall = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(record), *args], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise SystemExit(f"{engine} generate failed ({proc.returncode}): {proc.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    usage = manifest["usage"].values()
    prompt = sum(u["input_tokens"] for u in usage)
    output = sum(u["output_tokens"] for u in usage)
    calls = sum(u["calls"] for u in usage)
    run_s = manifest["timings"]["generate_s"]
    return {"wall": wall, "run_s": run_s, "prompt": prompt, "output": output, "calls": calls,
            "tps": (prompt + output) / run_s, "kept": manifest["counts"]["kept"],
            "rejected": manifest["counts"]["rejected"], "concurrency": manifest["config"]["concurrency"],
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
    import ctypes

    from llama_cpp import Llama
    from llama_cpp import llama_cpp as capi

    from synth_empathy.lm.local import embedded_model_path, model_param_overrides

    q4_0 = work / "model-q4_0.gguf"
    params = capi.llama_model_quantize_default_params()
    params.ftype = capi.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    params.nthread = threads or 0
    code = capi.llama_model_quantize(str(embedded_model_path()).encode(), str(q4_0).encode(), ctypes.byref(params))
    if code != 0:
        return {"error": f"llama_model_quantize returned {code}"}
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


def _fmt_engine(stats: dict | None) -> str:
    if not stats:
        return ""
    (s,) = stats.values()
    sizes = ", ".join(f"{k}: {v}" for k, v in s["batch_sizes"].items())
    return (f"{s['cache_hits']}/{s['requests']} calls hit a cached prefix, {s['prefix_tokens_reused']:,} of "
            f"{s['prompt_tokens']:,} prompt tokens reused; {s['decode_calls']} decode calls, mean batch "
            f"{s['mean_batch_size']} (sequences per call: calls = {sizes})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="[model] threads for every path (default: llama.cpp's "
                    "engine default, one per CPU)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--repack", action="store_true")
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.repeat):
            old = run_cli("old", args.n, args.threads, work, f"old{i}")
            new = run_cli("new", args.n, args.threads, work, f"new{i}")
            plain = plain_loop(new["record"], args.threads)
            rounds.append((old, new, plain))
            print(f"round {i + 1}: old {old['wall']:.1f} s, new {new['wall']:.1f} s; new {new['tps']:.1f} tok/s, "
                  f"plain loop {plain['tps']:.1f} tok/s", flush=True)
        packed = repack(args.threads, work) if args.repack else None

    cols = [f"run {i + 1}" for i in range(len(rounds))]
    rows: list[tuple[str, list[str], str]] = []

    def row(name: str, values: list[str], target: str = "") -> None:
        rows.append((name, values, target))

    row("`generate` wall, old engine, `--concurrency 1` (subprocess, start-up included)",
        [f"{o['wall']:.1f} s ({o['calls']} calls, {o['prompt']:,} + {o['output']:,} tokens, {o['kept']} kept / "
         f"{o['rejected']} rejected)" for o, _, _ in rounds])
    row("`generate` wall, new engine, defaults",
        [f"{n['wall']:.1f} s ({n['calls']} calls, {n['prompt']:,} + {n['output']:,} tokens, {n['kept']} kept / "
         f"{n['rejected']} rejected; concurrency {n['concurrency']})" for _, n, _ in rounds])
    row("**old wall / new wall**", [f"**{o['wall'] / n['wall']:.2f}x**" for o, n, _ in rounds], ">= 2x")
    row("Pipeline effective tok/s, old (manifest: tokens / generate_s)",
        [f"{o['tps']:.1f} ({o['run_s']:.1f} s)" for o, _, _ in rounds])
    row("Pipeline effective tok/s, new", [f"{n['tps']:.1f} ({n['run_s']:.1f} s)" for _, n, _ in rounds])
    row("Plain loop tok/s: the new run's calls replayed, `create_chat_completion`, fresh KV each",
        [f"{p['tps']:.1f} ({p['calls']} calls, {p['prompt']:,} + {p['output']:,} tokens, {p['wall']:.1f} s)"
         for _, _, p in rounds])
    row("**new pipeline tok/s / plain loop tok/s**", [f"**{n['tps'] / p['tps']:.2f}x**" for _, n, p in rounds],
        ">= 1.5x")
    row("New engine (manifest `local_engine`)", [_fmt_engine(n["engine"]) for _, n, _ in rounds])
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
    threads = args.threads or f"default ({os.cpu_count()})"
    cmd = " ".join(["python benchmarks/bench_local.py", *sys.argv[1:]])
    body = (f"Command: `{cmd}`  \nDate: {stamp()}  \nMachine: {machine()}; llama.cpp threads: {threads}; "
            f"load average at the end: {os.getloadavg()[0]:.1f}\n\n"
            f"Each `generate -n {args.n}` is the CLI in a subprocess with the shipped catalogs and default settings "
            "(the old engine with the old default `--concurrency 1`). The old engine's seed chain repeats its runs "
            "exactly; the new engine samples in the order calls meet in a batch, so its dialogues, and how many "
            "calls they take, differ from run to run and from the old engine's: read the wall ratio with the "
            "work each run did (calls, tokens), and tokens per second as the like-for-like figure.\n\n" + table)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _cli(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        main()
