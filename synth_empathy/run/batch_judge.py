"""`judge --batch` / `filter --batch`: the judge's calls through the Batch API, with the online judge's prompts.

Each request is what the online judge sends: PlainAdapter formats the judge predictor's signature, demos and
the transcript into messages, with the same response_format, temperature and token cap; each answer is parsed
by the same `adapter.parse` and the samples of a dialogue are combined by the same `combine_samples`, so the
Scores (and what is kept) are those of the online path for the same answers. One difference: an answer that
does not parse gets no corrective second call (a batch is one round), so that dialogue is `judge_failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.errors import error_detail
from synth_empathy.filters.judge import combine_samples, judge_failed
from synth_empathy.lm import PlainAdapter, UsageMeter
from synth_empathy.lm.batch import run_batch
from synth_empathy.lm.usage import COUNTED, usage_from
from synth_empathy.programs import load_programs
from synth_empathy.programs.judge import Judge
from synth_empathy.programs.transcript import conversation_text
from synth_empathy.run.workers import Outcome
from synth_empathy.schema import Dialogue


def judge_requests(dialogues: list[Dialogue], config: RunConfig, judge: Judge) -> dict[str, dict]:
    """custom_id ("<dialogue id>#<sample>") -> chat-completion body, as the online judge would send it."""
    model_config = config.judge_model()
    adapter, predictor = PlainAdapter(), judge.score
    model = model_config.model.removeprefix("openai/")
    settings = {"model": model, "temperature": model_config.temperature,
                **PlainAdapter.request_kwargs(predictor.signature)}
    if model_config.max_tokens is not None:
        settings["max_completion_tokens"] = model_config.max_tokens
    requests = {}
    for d in dialogues:
        messages = adapter.format(predictor.signature, predictor.demos, {"conversation": conversation_text(d.turns)})
        for sample in range(config.judge.samples):
            requests[f"{d.id}#{sample}"] = {**settings, "messages": messages}
    return requests


def judge_by_batch(dialogues: list[Dialogue], config: RunConfig, state_path: Path, judge: Judge | None = None,
                   meter: UsageMeter | None = None, poll_s: float = 30.0,
                   on_status: Callable[[str, dict], None] | None = None) -> list[Outcome]:
    """Score every dialogue through one batch (resumed from `state_path` when one is in flight); a request
    that failed or an answer that does not parse makes that dialogue a `judge_failed` rejection."""
    judge = judge or load_programs(programs_dir=config.programs_dir).judge  # the online judge's program
    requests = judge_requests(dialogues, config, judge)
    answers = run_batch(requests, config.judge_model(), Path(state_path), poll_s=poll_s, on_status=on_status)
    if meter is not None:
        usage = usage_from([a.body["usage"] for a in answers.values() if a.body and a.body.get("usage")])
        meter.merge({"judge": {**usage.model_dump(include=set(COUNTED)), "latencies": []}})
    adapter, signature = PlainAdapter(), judge.score.signature
    outcomes: list[Outcome] = []
    for d in dialogues:
        outs, error = [], None
        for sample in range(config.judge.samples):
            answer = answers[f"{d.id}#{sample}"]
            if answer.error:
                error = error or f"batch request failed: {answer.error}"
                continue
            try:
                outs.append(dspy.Prediction(**adapter.parse(signature, answer.content)))
            except Exception as exc:  # noqa: BLE001 - an unparsable answer is a recorded rejection
                error = error or error_detail(exc)
        outcomes.append(judge_failed(d, error) if error else d.model_copy(update={"scores": combine_samples(outs)}))
    return outcomes
