"""DSPy programs: seeker, supporter (strategy, draft, critique, revise) and judge."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dspy
import yaml

from synth_empathy.errors import UserError
from synth_empathy.programs.critique import Critic
from synth_empathy.programs.judge import Judge
from synth_empathy.programs.seeker import Seeker
from synth_empathy.programs.state import load_program_state
from synth_empathy.programs.supporter import Supporter

PROGRAM_NAMES = ("seeker", "supporter", "critique", "judge")


@dataclass
class Programs:
    seeker: Seeker
    supporter: Supporter
    judge: Judge

    def module(self, name: str) -> dspy.Module:
        return {"seeker": self.seeker, "supporter": self.supporter, "critique": self.supporter.critic,
                "judge": self.judge}[name]

    def versions(self) -> dict[str, str]:
        """A short hash of each program's instructions and demos: what changes when it is optimized."""
        out = {}
        for name in PROGRAM_NAMES:
            module = self.module(name)
            state = {
                pname: {"instructions": p.signature.instructions, "demos": [dict(d) for d in p.demos]}
                for pname, p in module.named_predictors()
            }
            blob = json.dumps(state, sort_keys=True, default=str).encode()
            out[name] = hashlib.sha256(blob).hexdigest()[:12]
        return out


DEMOS_FILE = Path(__file__).with_name("demos.yaml")


def attach_demos(programs: Programs, path: Path = DEMOS_FILE) -> None:
    """Give every predictor its hand-written demonstrations (keyed by program, then predictor name)."""
    demos = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name in ("seeker", "supporter", "judge"):
        predictors = dict(programs.module(name).named_predictors())
        for pname, examples in demos.get(name, {}).items():
            predictor = predictors[pname]
            predictor.demos = [dspy.Example(**ex).with_inputs(*predictor.signature.input_fields) for ex in examples]


def load_programs(critique_rounds: int = 1, programs_dir: Path | None = None) -> Programs:
    """Programs with the shipped demos, then the optimized state JSON files in `programs_dir` (<name>.json)."""
    programs = Programs(seeker=Seeker(), supporter=Supporter(rounds=critique_rounds), judge=Judge())
    attach_demos(programs)
    if programs_dir is not None:
        programs_dir = Path(programs_dir)
        if not programs_dir.is_dir():
            raise UserError(f"--programs {programs_dir} is not a folder")
        found = [name for name in PROGRAM_NAMES if (programs_dir / f"{name}.json").exists()]
        if not found:
            raise UserError(f"--programs {programs_dir} holds none of {', '.join(n + '.json' for n in PROGRAM_NAMES)}")
        for name in found:
            load_program_state(programs.module(name), programs_dir / f"{name}.json", name)
    return programs


__all__ = ["Critic", "Judge", "Programs", "Seeker", "Supporter", "load_programs", "PROGRAM_NAMES"]
