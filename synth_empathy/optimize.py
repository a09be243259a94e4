"""Compile a program with a DSPy optimizer against the judge; saved as DSPy state JSON (no pickle)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.corpus.read import read_any_dialogues
from synth_empathy.errors import UserError
from synth_empathy.filters.calibration import latest_labels
from synth_empathy.filters.rules import leaked_roles
from synth_empathy.lm import PlainAdapter, build_lm
from synth_empathy.programs import Programs, load_programs
from synth_empathy.programs.epitome import MECHANISMS, levels
from synth_empathy.programs.transcript import (
    conversation_text,
    first_person,
    not_said_yet,
    seeker_brief,
    seeker_character,
    seeker_feeling_at,
    with_reply,
)
from synth_empathy.schema import Dialogue, Label

OPTIMIZERS = ("bootstrap", "mipro", "gepa")
TRAINABLE = ("supporter", "seeker", "critique")


def human_verdicts(labels: Sequence[Label]) -> dict[str, Label]:
    """Per dialogue, the latest label of its reviewers' majority verdict (ties keep), from review's labels."""
    by_dialogue: dict[str, list[Label]] = {}
    for label in latest_labels(labels):
        by_dialogue.setdefault(label.dialogue_id, []).append(label)
    out = {}
    for dialogue_id, group in by_dialogue.items():
        keep = sum(x.keep for x in group) * 2 >= len(group)
        out[dialogue_id] = next(x for x in reversed(group) if x.keep == keep)
    return out


def trainset(program: str, dialogues: list[Dialogue], limit: int,
             labels: Sequence[Label] = ()) -> list[dspy.Example]:
    """One example per turn of the role the program plays, with the conversation before it as input.

    With human labels (DIR/labels.jsonl from `review`): dialogues people rejected are left out, a supporter
    turn a reviewer rewrote is learnt in the reviewer's words, and the critique of a labelled dialogue's last
    reply is measured against the reviewer's EPITOME levels (`human_levels`) instead of the judge's."""
    verdicts = human_verdicts(labels)
    examples: list[dspy.Example] = []
    for d in dialogues:
        verdict = verdicts.get(d.id)
        if verdict is not None and not verdict.keep:
            continue
        edits = {e.index: e.text for e in verdict.edits} if verdict else {}
        last_reply = max((i for i, t in enumerate(d.turns) if t.role == "supporter"), default=-1)
        for i, turn in enumerate(d.turns):
            before = d.turns[:i]
            if program in ("supporter", "critique") and turn.role == "supporter":
                ex = dict(seeker=seeker_brief(d.seed), conversation=conversation_text(before),
                          reply=edits.get(i, turn.text))
                r = verdict.ratings if verdict else None
                # levels rate the whole dialogue, which the last reply's conversation is; an edited reply is unrated
                rated = r is not None and None not in (r.er, r.ip, r.ex)
                if program == "critique" and rated and i == last_reply and i not in edits:
                    ex["human_levels"] = (r.er, r.ip, r.ex)
                if program == "supporter":
                    ex["language"] = d.seed.language
                keys = ("seeker", "conversation", "language") if program == "supporter" else ("conversation", "reply")
                examples.append(dspy.Example(**ex).with_inputs(*keys))
            elif program == "seeker" and turn.role == "seeker":
                # Exactly what role-play sends: the situation in the first person, the intensity the turn was
                # written at, the closing note on the message that ended the talk, only details not yet said.
                intensity = turn.intensity if turn.intensity is not None else d.seed.intensity
                closing = d.ending == "seeker_done" and i == len(d.turns) - 1
                examples.append(dspy.Example(
                    character=seeker_character(d.seed), situation=first_person(d.seed.situation.text),
                    feeling=seeker_feeling_at(d.seed, before, intensity, closing),
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
            truth = example.get("human_levels")  # a reviewer's levels are the ground truth where there are some
            if truth is None:
                judged = levels(judge(with_reply(example.conversation, example.reply)))
                truth = tuple(judged[short] for short in MECHANISMS)
            gaps = [abs(getattr(pred, short) - level) for short, level in zip(MECHANISMS, truth, strict=True)]
            return 1 - sum(gaps) / 6
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
                     budget: int = 2, limit: int = 8, labels_path: Path | None = None) -> tuple[Path, int, int]:
    """Compile `program` with `optimizer` on examples from the dialogues in `trainset_path` (our JSONL or any
    importable dataset), the config's judge as the metric and its generator as the student's LM; saved to `out`.
    Human labels (`labels_path`, default labels.jsonl next to the trainset) override the judge where they exist.
    Returns the path, how many examples it learnt from and how many human labels it used."""
    from synth_empathy.review.labels import LABELS, read_labels

    if program not in TRAINABLE:
        raise UserError(f"--program must be one of {', '.join(TRAINABLE)}, not '{program}'")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")
    if labels_path is not None and not labels_path.is_file():
        raise UserError(f"--labels {labels_path} does not exist")
    human = read_labels(labels_path if labels_path is not None else trainset_path.parent / LABELS)
    programs = load_programs(config.dialogue.critique_rounds, config.programs_dir)
    examples = trainset(program, read_any_dialogues(trainset_path), limit, human)
    judge_lm = build_lm(config.judge_model())
    with dspy.context(lm=build_lm(config.model), adapter=PlainAdapter()):
        compiled = compile_program(program, optimizer, programs, examples, judge_lm, budget)
    return save_program(compiled, out, program), len(examples), len(human)
