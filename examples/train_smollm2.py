"""Train SmolLM2-135M, loaded from the GGUF that ships with synth-empathy's embedded model, on CPU for a few steps
each of SFT (an `export --format openai` of a corpus), DPO (`export --format dpo`) and GRPO (the RL environment,
synth_empathy.train), printing losses and rewards. The stages run in that order on one model, as a pipeline would.

    pip install -e ".[train]"     # torch, transformers, trl, gguf: install torch for your platform first
    python examples/train_smollm2.py --corpus outputs/demo        # a corpus made with generate --keep-drafts
    python examples/train_smollm2.py                              # makes a 3-dialogue corpus first (slow on CPU)

It shows that the pieces fit, not that three steps make a better supporter: the model is tiny and so is the data.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental in trl 1.x

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

from synth_empathy.config import load_config  # noqa: E402
from synth_empathy.lm.local import embedded_model_path  # noqa: E402
from synth_empathy.publish.exports import export_corpus  # noqa: E402
from synth_empathy.run.generate import run_generate  # noqa: E402
from synth_empathy.train.env import SupportEnv  # noqa: E402
from synth_empathy.train.grpo import env_reward, episode_rows, make_rollout_func  # noqa: E402


def load_smollm2():
    """SmolLM2-135M-Instruct from the embedded GGUF, de-quantized to float32 by transformers (needs `gguf`)."""
    path = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # transformers flags a GGUF-loaded model as quantized (it keeps the GGUF "quantizer"), and the trainers refuse
    # to fine-tune a quantized model; the weights are plain float32 by now, so the flag is cleared.
    model.hf_quantizer = None
    model.is_quantized = False
    model.config.quantization_config = None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def make_corpus(out: Path, n: int) -> Path:
    """A few one-exchange dialogues on the embedded model, drafts kept (DPO pairs come from the critique's
    revisions). The embedded judge is too small to judge (see the data card), so it keeps whatever passes the rules."""
    cfg = load_config(None, {"n": n, "dialogue": {"keep_drafts": True, "max_turns": 1, "min_turns": 1},
                             "judge": {"min_sensibility": 0, "min_rationality": 0}})
    manifest = run_generate(cfg, out)
    print(f"corpus: {manifest.counts['kept']} kept, {manifest.counts['rejected']} rejected -> {out}")
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def common(out: Path, steps: int) -> dict:
    return dict(output_dir=str(out), max_steps=steps, per_device_train_batch_size=2, logging_steps=1,
                save_strategy="no", report_to=[], use_cpu=True, learning_rate=5e-5, seed=0)


def losses(trainer) -> list[float]:
    return [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]


def sft(model, tokenizer, corpus: Path, work: Path, steps: int) -> dict:
    export_corpus(corpus, "openai", work / "sft.jsonl", overwrite=True)
    # Chat rows (messages) or TRL's prompt/completion rows, whichever the export writes; only the fields TRL reads.
    rows = [{"messages": [{"role": m["role"], "content": m["content"]} for m in r["messages"]]} if "messages" in r
            else {k: r[k] for k in ("prompt", "completion")} for r in read_jsonl(work / "sft.jsonl")]
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                         args=SFTConfig(**common(work / "sft", steps), max_length=512))
    started = time.perf_counter()
    trainer.train()
    return {"stage": "SFT", "rows": len(rows), "steps": steps, "loss": losses(trainer),
            "seconds": round(time.perf_counter() - started, 1)}


def dpo(model, tokenizer, corpus: Path, work: Path, steps: int) -> dict:
    export_corpus(corpus, "dpo", work / "dpo.jsonl", overwrite=True)
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in read_jsonl(work / "dpo.jsonl")]
    if not rows:
        return {"stage": "DPO", "rows": 0, "steps": 0, "loss": [], "seconds": 0.0,
                "note": "the corpus has no revised supporter turn, so no preference pair"}
    # The reference is the model as SFT left it; TRL would otherwise reload it from a path, and a GGUF has none.
    reference = copy.deepcopy(model).eval()
    trainer = DPOTrainer(model=model, ref_model=reference, processing_class=tokenizer,
                         train_dataset=Dataset.from_list(rows),
                         args=DPOConfig(**common(work / "dpo", steps), max_length=512, beta=0.1))
    started = time.perf_counter()
    trainer.train()
    rewards = [round(h["rewards/margins"], 4) for h in trainer.state.log_history if "rewards/margins" in h]
    return {"stage": "DPO", "rows": len(rows), "steps": steps, "loss": losses(trainer), "reward_margin": rewards,
            "seconds": round(time.perf_counter() - started, 1)}


def grpo(model, tokenizer, work: Path, steps: int, episodes: int, turns: int) -> dict:
    # The seeker runs on the embedded model through llama.cpp; few replies an episode keep CPU rollouts short.
    env = SupportEnv(load_config(None, {"dialogue": {"max_turns": turns, "min_turns": 1}}))
    rows = episode_rows(env, episodes)
    args = GRPOConfig(**common(work / "grpo", steps), num_generations=2, max_completion_length=256, beta=0.0,
                      temperature=1.0)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=env_reward, args=args,
                          train_dataset=Dataset.from_list([{"prompt": r["prompt"]} for r in rows]),
                          rollout_func=make_rollout_func(env, rows, max_new_tokens=40))
    started = time.perf_counter()
    trainer.train()
    rewards = [round(h["reward"], 4) for h in trainer.state.log_history if "reward" in h]
    return {"stage": "GRPO", "rows": len(rows), "steps": steps, "loss": losses(trainer), "reward": rewards,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a corpus folder (generate --keep-drafts); default: make one")
    parser.add_argument("--dialogues", type=int, default=3, help="dialogues in the corpus made without --corpus")
    parser.add_argument("--steps", type=int, default=3, help="SFT and DPO optimizer steps")
    parser.add_argument("--grpo-steps", type=int, default=2, help="GRPO optimizer steps (each plays 2 episodes)")
    parser.add_argument("--episodes", type=int, default=2, help="GRPO: distinct episodes (prompts)")
    parser.add_argument("--grpo-turns", type=int, default=2, help="GRPO: supporter replies an episode at most")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="train_smollm2_"))
    corpus = args.corpus or make_corpus(work / "corpus", args.dialogues)
    started = time.perf_counter()
    model, tokenizer = load_smollm2()
    print(f"loaded SmolLM2-135M from {embedded_model_path().name} in {time.perf_counter() - started:.0f} s")
    results = []
    for stage in (lambda: sft(model, tokenizer, corpus, work, args.steps),
                  lambda: dpo(model, tokenizer, corpus, work, args.steps),
                  lambda: grpo(model, tokenizer, work, args.grpo_steps, args.episodes, args.grpo_turns)):
        result = stage()
        results.append(result)
        print(json.dumps(result), flush=True)
    print(f"{'stage':<6} {'rows':>5} {'steps':>5} {'seconds':>8}  loss (per step); reward")
    for r in results:
        extra = r.get("reward", r.get("reward_margin", ""))
        print(f"{r['stage']:<6} {r['rows']:>5} {r['steps']:>5} {r['seconds']:>8}  {r['loss']}; {extra}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
