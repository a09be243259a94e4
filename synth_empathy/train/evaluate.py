"""`synth-empathy eval`: a model plays the supporter on held-out seeds against the live seeker; the table.

The seeker (and, unless named apart, the judge) runs on the generator's model: the --config file's [model]. The
model under test only ever sees the chat (the exports' system message, the seeker as user), like any chat model
in deployment. Per emotion it reports the mean drop of the seeker's hidden intensity from its first message to
after the last reply, the mean episode return, the judge's scores and how often each failure flag was raised.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from synth_empathy.config import MAX_N, ModelConfig, RunConfig
from synth_empathy.errors import RunError, UserError, error_detail
from synth_empathy.filters.judge import judge_caveat
from synth_empathy.graphs.split import HELD_OUT_SHARE
from synth_empathy.lm import build_lm, model_label
from synth_empathy.lm.local import EMBEDDED_MODEL_NAME
from synth_empathy.schema import FAILURE_MECHANISMS
from synth_empathy.train.env import Episode, SupportEnv, lm_policy

RESULT_FILE = "eval.json"
EPISODES_FILE = "episodes.jsonl"


@dataclass
class EvalResult:
    supporter: str
    seeker: str
    judge: str | None
    episodes: list[Episode] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # episodes a model call broke: seed id and error
    held_out_situations: int = 0

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per emotion, then `all`."""
        by_emotion: dict[str, list[Episode]] = defaultdict(list)
        for ep in self.episodes:
            by_emotion[ep.dialogue.seed.emotion].append(ep)
        return [_summary(name, eps) for name, eps in sorted(by_emotion.items())] + [_summary("all", self.episodes)]

    def caveats(self) -> list[str]:
        """Why these figures are no evidence of a supporter's quality: a judge that cannot judge or grades its own
        model, and a seeker on the embedded model, whose intensity (so drop and return) is as weak."""
        out = [judge_caveat({"judge": self.judge, "generator": self.supporter}, then="run eval again")]
        if self.seeker.endswith(EMBEDDED_MODEL_NAME):
            out.append(f"the seeker is the embedded {EMBEDDED_MODEL_NAME} model: its hidden intensity, and so the drop "
                       f"and the return, say little about the supporter; put a capable model in the seeker's seat "
                       f"with [model] in --config")
        return [caveat for caveat in out if caveat]

    def to_json(self) -> dict[str, Any]:
        return {
            "supporter": self.supporter, "seeker": self.seeker, "judge": self.judge, "caveats": self.caveats(),
            "split": {"held_out_share": HELD_OUT_SHARE, "held_out_situations": self.held_out_situations},
            "summary": self.rows(),
            "failed": self.failed,
            "episodes": [{"id": ep.dialogue.id, "emotion": ep.dialogue.seed.emotion,
                          "problem_type": ep.dialogue.seed.problem_type, "situation": ep.dialogue.seed.situation.id,
                          "profile": ep.dialogue.seed.profile.model_dump() if ep.dialogue.seed.profile else None,
                          "initial_intensity": ep.dialogue.seed.intensity, "final_intensity": ep.final_intensity,
                          "intensity_drop": ep.intensity_drop, "return": ep.total_reward,
                          "ending": ep.dialogue.ending, "replies": sum(t.role == "supporter" for t in
                                                                       ep.dialogue.turns),
                          "scores": ep.dialogue.scores.model_dump() if ep.dialogue.scores else None,
                          "judge_error": ep.judge_error} for ep in self.episodes],
        }

    def table(self) -> str:
        flags = [_SHORT.get(f, f[:12]) for f in FAILURE_MECHANISMS]
        head = (f"{'emotion':<14} {'n':>3} {'drop':>6} {'return':>7} {'sens':>5} {'rat':>5}  "
                + " ".join(f"{f:>12}" for f in flags))
        lines = [f"supporter {self.supporter} vs seeker {self.seeker}; judge {self.judge or 'off'}", head]
        for row in self.rows():
            cells = " ".join(f"{_fmt(row['failure_rates'].get(f), pct=True):>12}" for f in FAILURE_MECHANISMS)
            lines.append(f"{row['emotion']:<14} {row['n']:>3} {_fmt(row['mean_intensity_drop']):>6} "
                         f"{_fmt(row['mean_return']):>7} {_fmt(row['mean_sensibility']):>5} "
                         f"{_fmt(row['mean_rationality']):>5}  {cells}")
        if self.failed:
            lines.append(f"{len(self.failed)} episodes failed (a model call broke) and are left out; see eval.json")
        lines.append("drop: the seeker's hidden intensity (0-10) at its first message minus after the last reply; "
                     "failure columns: share of judged episodes flagged with " + ", ".join(FAILURE_MECHANISMS))
        lines += [f"Not a quality claim: {caveat}." for caveat in self.caveats()]
        return "\n".join(lines)


# The failure flags' column headers: the word of each name that tells them apart.
_SHORT = {"sentiment_attenuation": "attenuation", "granularity_mismatch": "granularity",
          "conflict_avoidance": "avoidance", "linguistic_distancing": "distancing"}


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0%}" if pct else f"{value:.2f}"


def _mean(values: Sequence[float]) -> float | None:
    return round(fmean(values), 3) if values else None


def _summary(name: str, episodes: Sequence[Episode]) -> dict[str, Any]:
    scored = [ep.dialogue.scores for ep in episodes if ep.dialogue.scores is not None]
    return {
        "emotion": name, "n": len(episodes),
        "mean_intensity_drop": _mean([ep.intensity_drop for ep in episodes]),
        "mean_return": _mean([ep.total_reward for ep in episodes]),
        "mean_sensibility": _mean([s.sensibility for s in scored]),
        "mean_rationality": _mean([s.rationality for s in scored]),
        "judged": len(scored),
        "failure_rates": {f: round(sum(s.failures.get(f, False) for s in scored) / len(scored), 3)
                          for f in FAILURE_MECHANISMS} if scored else {},
        "endings": dict(Counter(ep.dialogue.ending for ep in episodes).most_common()),
    }


def run_eval(seeker_config: RunConfig, supporter: ModelConfig, n: int, judge: bool = True,
             on_episode: Callable[[int, Episode], None] | None = None, **env_parts: Any) -> EvalResult:
    """Play the first `n` seeds of the held-out split with `supporter` as the policy. `env_parts` go to
    SupportEnv (generator_lm, judge_lm, programs, catalog) and may hold `policy_lm` in place of building one."""
    if not 1 <= n <= MAX_N:
        raise UserError(f"--n must be 1 to {MAX_N:,}, not {n:,}")
    policy_lm = env_parts.pop("policy_lm", None) or build_lm(supporter)
    env = SupportEnv(seeker_config, split="eval", score=judge, **env_parts)
    label = model_label(supporter)
    result = EvalResult(supporter=label, seeker=model_label(seeker_config.model),
                        judge=model_label(seeker_config.judge_model()) if judge else None,
                        held_out_situations=len(env.catalog.situations))
    policy = lm_policy(policy_lm)
    for index in range(n):
        try:
            episode = env.play(policy, seed=index, policy_label=label)
        except Exception as exc:  # noqa: BLE001 - one broken episode is recorded, not the end of the benchmark
            result.failed.append({"id": env.seed_at(index).id, "error": error_detail(exc)})
            continue
        result.episodes.append(episode)
        if on_episode:
            on_episode(index, episode)
    if not result.episodes:
        raise RunError(f"all {n} episodes failed; the first: {result.failed[0]['error']}")
    return result


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse, before any model call, to replace an earlier result."""
    target = Path(out_dir) / RESULT_FILE
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists; choose another --out or pass --overwrite")


def write_eval(result: EvalResult, out_dir: Path, overwrite: bool = False) -> Path:
    """DIR/eval.json (summary and episodes) and DIR/episodes.jsonl (the conversations as dialogue records)."""
    out_dir = Path(out_dir)
    target = out_dir / RESULT_FILE
    check_out_dir(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    (out_dir / EPISODES_FILE).write_text(
        "".join(ep.dialogue.model_dump_json(exclude_none=True) + "\n" for ep in result.episodes), encoding="utf-8")
    return target
