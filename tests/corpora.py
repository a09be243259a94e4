"""A small corpus on disk (dialogues.jsonl, rejected.jsonl, manifest.json), valid per schema.Dialogue and
schema.Manifest, for the publish tests (exports, stats, card, report)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from synth_empathy.config import RunConfig
from synth_empathy.corpus.store import KEPT_FILE, MANIFEST_FILE, REJECTED_FILE
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.graph import plausible
from synth_empathy.graphs.sampler import plan_seeds, seed_id
from synth_empathy.schema import Dialogue, Manifest, Provenance, Rejection, Scores, Seed, StageUsage, Turn

SUPPORTER_LINES = [
    ("question", "What has been the hardest part of {what} for you so far?"),
    ("restatement", "So {what} has been sitting with you all week, and it keeps coming back at night."),
    ("reflection_of_feelings", "It sounds like you feel {emotion}, and that makes sense after {what}."),
    ("self_disclosure", "I once went through something a bit like {what}, and I remember how heavy it felt."),
    ("affirmation", "You reached out about {what} instead of keeping it in, and that takes courage."),
    ("suggestion", "Would it help to write down one small step you could take about {what} tomorrow?"),
    ("information", "Many people feel {emotion} after {what}; it often eases once it is talked through."),
    ("other", "I'm here with you, take your time."),
]
SEEKER_LINES = [
    "Honestly I keep replaying it in my head and I can't sleep.",
    "My family doesn't really know yet, I haven't found the words.",
    "Maybe. I think I just needed to say it out loud to someone first.",
    "It's the feeling that everyone else has it figured out except me.",
    "Thanks, that actually helps a little. I feel less alone with it.",
    "I guess I could call my friend tomorrow and tell her.",
]


def make_dialogue(seed: Seed, rng: random.Random, exchanges: int, created: str, scores: Scores | None) -> Dialogue:
    what = seed.situation.text.rstrip(".").lower()
    turns: list[Turn] = []
    intensity = seed.intensity
    for i in range(exchanges):
        text = seed.situation.text if i == 0 else rng.choice(SEEKER_LINES)
        turns.append(Turn(role="seeker", text=text, intensity=intensity))
        strategy, line = rng.choice(SUPPORTER_LINES)
        turns.append(Turn(role="supporter", strategy=strategy, revised=rng.random() < 0.5,
                          text=line.format(what=what, emotion=seed.emotion)))
        intensity = max(0, min(10, intensity + rng.choice([-2, -1, -1, 0, 1])))
    ending = rng.choice(["max_turns", "seeker_done", "stalled"])
    if ending == "seeker_done":
        turns.append(Turn(role="seeker", text="Thank you, I think I'll go and rest now.", intensity=intensity))
    return Dialogue(
        id=seed.id, seed=seed, turns=turns, ending=ending, scores=scores,
        provenance=Provenance(generator_model="openai:gpt-test", judge_model="openai:judge-test",
                              program_versions={"supporter": "1", "judge": "2"}, config_fingerprint="f" * 16,
                              created=created, package_version="0.1.0"),
    )


def sibling(seed: Seed, index: int, personas) -> Seed:
    """The same situation (one family) with another plausible persona."""
    persona = next(p for p in personas if p.id != seed.persona.id and plausible(p, seed.situation))
    return seed.model_copy(update={"persona": persona, "index": index,
                                   "id": seed_id(index, persona, seed.situation, seed.emotion, seed.intensity)})


def make_corpus(out: Path, n: int = 40, rejected: int = 12, seed: int = 0, catalog_dir: Path | None = None) -> Path:
    """n kept dialogues (about a third share a situation with another), `rejected` rejections."""
    cfg = RunConfig(seed=seed) if catalog_dir is None else RunConfig(
        seed=seed, personas_dir=catalog_dir / "personas", scenarios_dir=catalog_dir / "scenarios")
    catalog = load_catalog(cfg.personas_dir, cfg.scenarios_dir)
    rng = random.Random(seed)
    seeds = plan_seeds(catalog, n + rejected, seed)
    # Families: every third seed repeats the situation of the one before it with another persona.
    for i in range(1, len(seeds), 3):
        seeds[i] = sibling(seeds[i - 1], seeds[i].index, catalog.personas)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    out.mkdir(parents=True, exist_ok=True)
    kept_lines, rejected_lines = [], []
    for i, s in enumerate(seeds):
        created = (start + timedelta(minutes=i)).isoformat()
        if i < n:
            scores = Scores(sensibility=rng.choice([6, 6.5, 7, 7.5, 8, 8, 9, 10]),
                            rationality=rng.choice([6, 7, 7, 8, 9]),
                            er=rng.choice([1, 1.5, 2]), ip=rng.choice([0, 1, 2]), ex=rng.choice([0, 1, 2]),
                            failures={"sentiment_attenuation": rng.random() < 0.2}, rationale="Warm and specific.")
            dialogue = make_dialogue(s, rng, rng.randint(2, 5), created, scores)
            kept_lines.append(dialogue.model_dump_json(exclude_none=True))
            continue
        kind = (i - n) % 4
        if kind == 0:
            r = Rejection(id=s.id, stage="generate", reasons=["generation_failed"], detail="boom", seed=s)
        else:
            d = make_dialogue(s, rng, 2, created, None)
            if kind == 1:
                r = Rejection(id=s.id, stage="rules", reasons=["too_short"], seed=s, dialogue=d)
            elif kind == 2:
                r = Rejection(id=s.id, stage="dedup", reasons=["near_duplicate"], seed=s, dialogue=d)
            else:
                d = d.model_copy(update={"scores": Scores(sensibility=rng.choice([2, 3, 4, 5]), rationality=4,
                                                          er=0, ip=0, ex=0)})
                r = Rejection(id=s.id, stage="judge", reasons=["low_sensibility", "low_rationality"], seed=s,
                              dialogue=d)
        rejected_lines.append(r.model_dump_json(exclude_none=True))
    (out / KEPT_FILE).write_text("".join(line + "\n" for line in kept_lines), encoding="utf-8")
    (out / REJECTED_FILE).write_text("".join(line + "\n" for line in rejected_lines), encoding="utf-8")
    manifest = Manifest(
        package_version="0.1.0", config=cfg.public_dict(), config_fingerprint="f" * 16,
        versions={"python": "3.11.7", "dspy": "3.4.1"},
        models={"generator": "openai:gpt-test", "judge": "openai:judge-test"},
        counts={"planned": n + rejected, "kept": n, "rejected": rejected},
        rejection_reasons={}, usage={"seeker": StageUsage(calls=90, input_tokens=40000, output_tokens=5000),
                                     "supporter": StageUsage(calls=120, input_tokens=80000, output_tokens=9000),
                                     "judge": StageUsage(calls=50, input_tokens=30000, output_tokens=2000)},
        timings={"generate_s": 12.5}, created=start.isoformat(), finished=(start + timedelta(hours=1)).isoformat(),
    )
    (out / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return out


