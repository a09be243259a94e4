"""Compile a program with a DSPy optimizer against the judge; saved as DSPy state JSON (no pickle)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.corpus.read import read_any_dialogues
from synth_empathy.errors import UserError
from synth_empathy.filters.rules import leaked_roles
from synth_empathy.lm import PlainAdapter, build_lm
from synth_empathy.programs import Programs, load_programs
from synth_empathy.programs.epitome import MECHANISMS, levels
from synth_empathy.programs.transcript import (
    conversation_text,
    first_person,
    not_said_yet,
    persona_card,
    seeker_brief,
    seeker_feeling,
    with_reply,
)
from synth_empathy.schema import Dialogue

OPTIMIZERS = ("bootstrap", "mipro", "gepa")
TRAINABLE = ("supporter", "seeker", "critique")


def trainset(program: str, dialogues: list[Dialogue], limit: int) -> list[dspy.Example]:
    """One example per turn of the role the program plays, with the conversation before it as input."""
    examples: list[dspy.Example] = []
    for d in dialogues:
        for i, turn in enumerate(d.turns):
            before = d.turns[:i]
            if program in ("supporter", "critique") and turn.role == "supporter":
                ex = dict(seeker=seeker_brief(d.seed), conversation=conversation_text(before), reply=turn.text)
                keys = ("seeker", "conversation") if program == "supporter" else ("conversation", "reply")
                examples.append(dspy.Example(**ex).with_inputs(*keys))
            elif program == "seeker" and turn.role == "seeker":
                # Exactly what role-play sends: the situation in the first person, the intensity the turn was
                # written at, the closing note on the message that ended the talk, only details not yet said.
                intensity = turn.intensity if turn.intensity is not None else d.seed.intensity
                closing = d.ending == "seeker_done" and i == len(d.turns) - 1
                examples.append(dspy.Example(
                    character=persona_card(d.seed.persona), situation=first_person(d.seed.situation.text),
                    feeling=seeker_feeling(d.seed.emotion, intensity, closing),
                    not_said_yet=not_said_yet(d.seed, before),
                    conversation=conversation_text(before, viewpoint="seeker"), message=turn.text,
                ).with_inputs("character", "situation", "feeling", "not_said_yet", "conversation"))
    if not examples:
        raise UserError(f"the trainset holds no {program} turns to learn from")
    return examples[:limit]


def judge_metric(program: str, programs: Programs, judge_lm: dspy.LM) -> Callable:
    """The judge as metric, in [0, 1]. Supporter: the judged exchange's (sensibility + rationality) / 20.
    Critique: agreement of its EPITOME levels with the judge's on the same reply. Seeker: the judge cannot
    score a help-seeker, so the rules that make a seeker turn unusable (role leakage, advice, length) decide."""

    def judge(conversation: str) -> dspy.Prediction:
        with dspy.context(lm=judge_lm):
            return programs.judge(conversation=conversation)

    def metric(example, pred, trace=None, pred_name=None, pred_trace=None) -> float:
        if program == "supporter":
            out = judge(with_reply(example.conversation, pred.reply))
            return (out.sensibility + out.rationality) / 20
        if program == "critique":
            out = judge(with_reply(example.conversation, example.reply))
            judged = levels(out)
            return 1 - sum(abs(getattr(pred, short) - judged[short]) for short in MECHANISMS) / 6
        return float(not leaked_roles(pred.message, "seeker") and 3 <= len(pred.message.split()) <= 60)

    return metric


def compile_program(program: str, optimizer: str, programs: Programs, examples: list[dspy.Example],
                    judge_lm: dspy.LM, budget: int = 4) -> dspy.Module:
    """Run the optimizer with a small budget (`budget` caps demos, candidates and trials)."""
    if program not in TRAINABLE:
        raise UserError(f"--program must be one of {', '.join(TRAINABLE)}, not '{program}'")
    student = programs.module(program)
    metric = judge_metric(program, programs, judge_lm)
    if optimizer == "bootstrap":
        opt = dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=budget, max_labeled_demos=budget,
                                    max_errors=len(examples))
        return opt.compile(student, trainset=examples)
    if optimizer == "mipro":
        opt = dspy.MIPROv2(metric=metric, auto=None, num_candidates=max(2, budget), num_threads=1,
                           max_bootstrapped_demos=budget, max_labeled_demos=budget, verbose=False,
                           max_errors=len(examples))
        return opt.compile(student, trainset=examples, valset=examples, num_trials=max(2, budget),
                           minibatch=False)
    if optimizer == "gepa":
        opt = dspy.GEPA(metric=metric, max_metric_calls=max(4 * len(examples), budget * len(examples)),
                        reflection_lm=dspy.settings.lm, num_threads=1, reflection_minibatch_size=min(3, len(examples)),
                        track_stats=False, use_merge=False)
        return opt.compile(student, trainset=examples, valset=examples)
    raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")


def save_program(module: dspy.Module, out: Path, program: str) -> Path:
    """DSPy state JSON; a folder gets <program>.json, the name `generate --programs DIR` looks for."""
    path = out / f"{program}.json" if out.is_dir() or not out.suffix else out
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return path


def optimize_program(config: RunConfig, program: str, optimizer: str, trainset_path: Path, out: Path,
                     budget: int = 2, limit: int = 8) -> tuple[Path, int]:
    """Compile `program` with `optimizer` on examples from the dialogues in `trainset_path` (our JSONL or any
    importable dataset), the config's judge as the metric and its
    generator as the student's LM; saved to `out`. Returns the path and how many examples it learnt from."""
    if program not in TRAINABLE:
        raise UserError(f"--program must be one of {', '.join(TRAINABLE)}, not '{program}'")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")
    programs = load_programs(config.dialogue.critique_rounds, config.programs_dir)
    examples = trainset(program, read_any_dialogues(trainset_path), limit)
    judge_lm = build_lm(config.judge_model())
    with dspy.context(lm=build_lm(config.model), adapter=PlainAdapter()):
        compiled = compile_program(program, optimizer, programs, examples, judge_lm, budget)
    return save_program(compiled, out, program), len(examples)
