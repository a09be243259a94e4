"""The Python API: a generator that plugs into training pipelines.

Example:
    >>> from synth_empathy import Generator, RunConfig
    >>> gen = Generator(RunConfig(n=4))
    >>> for dialogue in gen.stream():          # validated, filtered Dialogue objects as they are made
    ...     print(dialogue.turns[-1].text)
    >>> manifest = gen.run("outputs/run")      # the CLI's path: the corpus on disk, resumable
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.errors import require_extra
from synth_empathy.graphs.catalog import Catalog, load_catalog
from synth_empathy.graphs.sampler import plan_for
from synth_empathy.programs import Programs, load_programs
from synth_empathy.publish.exports import hf_row
from synth_empathy.run.generate import CustomFilter, Run, run_generate
from synth_empathy.run.workers import Workers
from synth_empathy.schema import Dialogue, Manifest, Seed


class Generator:
    """Generate empathetic dialogues from a RunConfig, with every part replaceable.

    Args:
        config: the run settings (defaults: the embedded local model, the shipped catalogs).
        seeker, supporter, critique, judge: your own DSPy modules in place of the shipped ones (same
            call signatures as synth_empathy.programs.Seeker, Supporter, Critic, Judge).
        filters: extra filters, each a function Dialogue -> None (keep), a reason code or a Rejection (drop);
            they run after the rules, before dedup and the judge.
        catalog: your own persona/scenario catalog (synth_empathy.graphs.catalog.Catalog).
        generator_lm, judge_lm: dspy.LM objects to use instead of the ones the config describes.
    """

    def __init__(self, config: RunConfig | None = None, *, seeker: dspy.Module | None = None,
                 supporter: dspy.Module | None = None, critique: dspy.Module | None = None,
                 judge: dspy.Module | None = None, filters: Sequence[CustomFilter] = (),
                 catalog: Catalog | None = None, generator_lm: dspy.LM | None = None,
                 judge_lm: dspy.LM | None = None) -> None:
        self.config = config or RunConfig()
        programs = load_programs(self.config.dialogue.critique_rounds, self.config.programs_dir)
        if critique is not None:
            programs.supporter.critic = critique
        self.programs = Programs(seeker=seeker or programs.seeker, supporter=supporter or programs.supporter,
                                 judge=judge or programs.judge)
        self.filters = list(filters)
        self.catalog = catalog
        self.generator_lm = generator_lm
        self.judge_lm = judge_lm

    def _parts(self) -> dict:
        return dict(programs=self.programs, generator_lm=self.generator_lm, judge_lm=self.judge_lm,
                    catalog=self.catalog, filters=self.filters)

    def plan(self) -> list[Seed]:
        """The seeds this config will turn into dialogues (deterministic for config.seed)."""
        catalog = self.catalog or load_catalog(self.config.personas_dir, self.config.scenarios_dir)
        return plan_for(catalog, self.config)

    def stream(self) -> Iterator[Dialogue]:
        """Yield each kept dialogue as soon as it is made and has passed the filters; nothing is written.
        Rejections are dropped here; use `run()` to keep them on disk."""
        run = Run(self.config, Path("."), **self._parts())
        # A bounded window of seeds in flight: a consumer that stops early does not wait for the whole plan.
        with Workers(run.make, self.config.concurrency, name="stream") as pool:
            for outcome in pool.as_finished(plan_for(run.catalog, self.config), window=self.config.concurrency):
                if isinstance(outcome, Dialogue):
                    yield outcome

    def run(self, out_dir: str | Path, resume: bool = False) -> Manifest:
        """The CLI's path: write the corpus (kept, rejected, manifest, card) to `out_dir`; resumable."""
        return run_generate(self.config, Path(out_dir), resume=resume, **self._parts())

    def to_hf_iterable_dataset(self):
        """A `datasets.IterableDataset` over `stream()`, for PyTorch/Hugging Face data loaders.
        Each row is the hf export's row (`publish.exports.hf_row`): id, messages (user = seeker, assistant =
        supporter, no system message), seed fields, scores, models and the whole record."""
        IterableDataset = require_extra("datasets", "hf", "to_hf_iterable_dataset").IterableDataset

        def rows():
            for d in self.stream():
                yield hf_row(d, system_prompt=None)

        return IterableDataset.from_generator(rows)
