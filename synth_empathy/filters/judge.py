"""LLM-judge scoring: k samples averaged into Scores, and the keep rule over them."""

from __future__ import annotations

from statistics import fmean

from synth_empathy.config import JudgeConfig
from synth_empathy.errors import error_detail
from synth_empathy.lm.local import EMBEDDED_MODEL_NAME
from synth_empathy.programs.epitome import MECHANISMS, failures, levels
from synth_empathy.programs.judge import Judge
from synth_empathy.programs.transcript import conversation_text
from synth_empathy.schema import FAILURE_MECHANISMS, Dialogue, Rejection, Scores


def judge_caveat(models: dict[str, str | None],
                 then: str = "run `synth-empathy filter` or generate again") -> str | None:
    """What a reader of the scores must know when the judge cannot vouch for quality; None for an own capable judge.

    A 135M judge scored word salad 10/8 and the same dialogue 0/1 on a second look; a judge that is the generator
    grades its own work. Either way "kept" means "passed the pipeline", not "good". `then`: what to do once a
    capable judge is named.
    """
    judge, generator = models.get("judge"), models.get("generator")
    how = ("name a capable judge with --judge-model (with [judge] backend = \"openai\" or \"litellm\" in --config "
           f"when the generator runs locally), then {then}")
    if judge and judge.endswith(EMBEDDED_MODEL_NAME):
        return (f"the judge is the embedded {EMBEDDED_MODEL_NAME} model, too small to judge empathy: its scores, and "
                f"so what was kept, are not evidence of quality; {how}")
    if judge and judge == generator:
        return f"the judge is the generator's own model ({judge}), grading its own dialogues: {how}"
    return None


def score_dialogue(dialogue: Dialogue, judge: Judge, samples: int = 1) -> Scores:
    """Average `samples` judge calls; a failure flag is set when most samples raise it.
    Any exception propagates: a judge failure is a recorded rejection, never a silent pass."""
    conversation = conversation_text(dialogue.turns)
    return combine_samples([judge(conversation=conversation) for _ in range(samples)])


def combine_samples(outs: list) -> Scores:
    """One dialogue's judge answers (objects with the JudgeDialogue output fields) as its Scores."""
    samples = len(outs)
    return Scores(
        sensibility=round(fmean(min(10, max(0, o.sensibility)) for o in outs), 2),
        rationality=round(fmean(min(10, max(0, o.rationality)) for o in outs), 2),
        **{short: round(fmean(levels(o)[short] for o in outs), 2) for short in MECHANISMS},
        failures={name: sum(name in failures(o) for o in outs) * 2 > len(outs) for name in FAILURE_MECHANISMS},
        rationale=outs[0].rationale,
        samples=samples,
        spread=_spread(outs) if samples > 1 else None,
    )


def _spread(outs: list) -> dict[str, float]:
    """How far the samples disagree on each 0-10 score: the review app puts such dialogues first."""
    spread = {}
    for metric in ("sensibility", "rationality"):
        values = [min(10, max(0, getattr(o, metric))) for o in outs]
        spread[metric] = float(max(values) - min(values))
    return spread


def scored(dialogue: Dialogue, judge: Judge, samples: int) -> Dialogue | Rejection:
    """The dialogue with its scores, or a `judge_failed` Rejection carrying it.
    Call inside dspy.context(lm=<judge LM>)."""
    try:
        return dialogue.model_copy(update={"scores": score_dialogue(dialogue, judge, samples)})
    except Exception as exc:  # noqa: BLE001 - a judge failure is a recorded rejection, never a pass
        return judge_failed(dialogue, error_detail(exc))


def judge_failed(dialogue: Dialogue, detail: str) -> Rejection:
    return Rejection(id=dialogue.id, stage="judge", reasons=["judge_failed"], detail=detail, seed=dialogue.seed,
                     dialogue=dialogue)


def meets_thresholds(dialogue: Dialogue, config: JudgeConfig) -> Dialogue | Rejection:
    """A scored dialogue, or a Rejection (with the scores) naming the thresholds it misses."""
    reasons = judge_reasons(dialogue.scores, config)
    if not reasons:
        return dialogue
    return Rejection(id=dialogue.id, stage="judge", reasons=reasons, seed=dialogue.seed, dialogue=dialogue,
                     detail=dialogue.scores.rationale)


def judge_verdict(dialogue: Dialogue, judge: Judge, config: JudgeConfig) -> Dialogue | Rejection:
    """The judge stage: score, then the keep rule."""
    outcome = scored(dialogue, judge, config.samples)
    return outcome if isinstance(outcome, Rejection) else meets_thresholds(outcome, config)


def judge_reasons(scores: Scores, config: JudgeConfig) -> list[str]:
    """Reason codes for a dialogue that misses the keep thresholds (empty: keep it)."""
    reasons = []
    if scores.sensibility < config.min_sensibility:
        reasons.append("low_sensibility")
    if scores.rationality < config.min_rationality:
        reasons.append("low_rationality")
    return reasons
