"""`--dry-run`: what a plan will take (calls, tokens, time, cost per stage) before it runs, and nothing written.

The figures come from measured averages per dialogue: those of the run already in --out (its manifest), or of a
pilot of a few seeds run into a temporary folder that is deleted afterwards. They are scaled linearly to the
plan; the time assumes the endpoint keeps `concurrency` dialogues busy as it did the pilot's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dspy

from synth_empathy.config import Price, RunConfig
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.corpus.read import read_any_dialogues
from synth_empathy.lm import UsageMeter
from synth_empathy.lm.usage import COUNTED, cost_usd
from synth_empathy.run.budget import stage_prices
from synth_empathy.schema import StageUsage

PILOT = 3  # seeds (or dialogues to judge) in a pilot


@dataclass
class Estimate:
    """Measured usage over `measured` dialogues, and what `planned` dialogues would take at that rate."""

    source: str  # where the averages come from, for the reader
    measured: int
    planned: int
    usage: dict[str, StageUsage]  # measured, per stage
    seconds_per_dialogue: float  # wall time one dialogue kept the pipeline busy, at concurrency 1
    concurrency: int
    prices: dict[str, Price | None]

    def plan(self) -> dict[str, StageUsage]:
        """The measured usage scaled to the plan, each stage priced."""
        factor = self.planned / self.measured if self.measured else 0.0
        out = {}
        for name, usage in self.usage.items():
            scaled = StageUsage(**{k: round(getattr(usage, k) * factor) for k in COUNTED})
            scaled.cost_usd = cost_usd(scaled, self.prices.get(name))
            out[name] = scaled
        return out

    def seconds(self) -> float:
        return self.planned * self.seconds_per_dialogue / max(1, self.concurrency)

    def table(self) -> str:
        plan = self.plan()
        lines = [f"dry run: {self.source}; scaled to {self.planned} dialogues. Nothing was written to --out.",
                 f"{'stage':<10} {'calls':>8} {'input':>11} {'cached':>11} {'output':>11} {'cost USD':>11}"]
        total = StageUsage()
        costs = []
        for name, u in plan.items():
            lines.append(f"{name:<10} {u.calls:>8} {u.input_tokens:>11} {u.cached_input_tokens:>11} "
                         f"{u.output_tokens:>11} {_usd(u.cost_usd):>11}")
            for key in COUNTED:
                setattr(total, key, getattr(total, key) + getattr(u, key))
            costs.append(u.cost_usd)
        whole = round(sum(costs), 6) if costs and None not in costs else None
        lines.append(f"{'total':<10} {total.calls:>8} {total.input_tokens:>11} {total.cached_input_tokens:>11} "
                     f"{total.output_tokens:>11} {_usd(whole):>11}")
        lines.append(f"time: about {_duration(self.seconds())} at concurrency {self.concurrency} "
                     f"({self.seconds_per_dialogue:.1f} s of calls a dialogue)")
        if whole is None:
            lines.append("cost: unknown for the stages without [prices] (see README, 'Using an endpoint')")
        return "\n".join(lines)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_generate(config: RunConfig, out_dir: Path) -> Estimate:
    """From the run in `out_dir` when it has written dialogues with this config, else from a pilot."""
    previous = read_manifest(out_dir)
    done = (previous.counts["kept"] + previous.counts["rejected"]) if previous else 0
    if previous and done and previous.config_fingerprint == config.fingerprint():
        then = int(previous.config.get("concurrency") or config.concurrency)
        return Estimate(f"measured over the {done} dialogues in {out_dir}", done, config.n, previous.usage,
                        previous.timings.get("generate_s", 0.0) * min(then, done) / done, config.concurrency,
                        stage_prices(config))
    from synth_empathy.run.generate import run_generate  # generate imports this package's siblings

    pilot = min(PILOT, config.n)
    with tempfile.TemporaryDirectory(prefix="synth-empathy-pilot-") as tmp:
        manifest = run_generate(config.model_copy(update={"n": pilot}), Path(tmp) / "pilot")
    kept = manifest.counts["kept"]
    return Estimate(f"pilot of {pilot} dialogues ({kept} kept)", pilot, config.n, manifest.usage,
                    manifest.timings["generate_s"] * min(config.concurrency, pilot) / pilot, config.concurrency,
                    stage_prices(config))


def estimate_filter(config: RunConfig, source: Path, judge_lm: dspy.LM | None = None,
                    batch_price: bool = False) -> Estimate:
    """Rules and dedup over the whole corpus (no model calls), then a pilot of the judge on a few dialogues."""
    from synth_empathy.filters.dedup import dedup_dialogues
    from synth_empathy.run.corpus_filter import apply_rules, judge_all

    dialogues, _ = apply_rules(read_any_dialogues(source), config)
    if config.dedup.enabled:
        dialogues, _ = dedup_dialogues(dialogues, config.dedup)
    pilot = dialogues[:PILOT]
    meter = UsageMeter()
    started = time.perf_counter()
    judge_all(pilot, config, judge_lm, meter=meter)
    elapsed = time.perf_counter() - started
    price = stage_prices(config)["judge"]
    if batch_price and price is not None:
        from synth_empathy.lm.batch import batch_price as discounted

        price = discounted(price)
    usage = meter.snapshot()
    return Estimate(f"judge pilot on {len(pilot)} of the {len(dialogues)} dialogues past rules and dedup",
                    len(pilot), len(dialogues), usage, elapsed * min(config.concurrency, max(1, len(pilot)))
                    / max(1, len(pilot)), config.concurrency, {"judge": price})
