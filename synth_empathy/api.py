"""The Python API: a generator that plugs into training pipelines.

Example:
    >>> from synth_empathy import Generator, RunConfig
    >>> gen = Generator(RunConfig(n=4))
    >>> for dialogue in gen.stream():          # validated, filtered Dialogue objects as they are made
    ...     print(dialogue.turns[-1].text)
    >>> manifest = gen.run("outputs/run")      # the CLI's path: the corpus on disk, resumable
    >>> train = gen.to_hf_iterable_dataset("outputs/train")  # made once into the folder; every epoch re-reads it
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import dspy

from synth_empathy.config import RunConfig
from synth_empathy.corpus.manifest import read_manifest
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import Catalog, load_catalog
from synth_empathy.graphs.sampler import iter_plan, plan_for
from synth_empathy.programs import Programs, load_programs
from synth_empathy.publish.rows import DEFAULT_SYSTEM_PROMPT
from synth_empathy.run.feed import DialogueStream, Feed, earlier_outcomes
from synth_empathy.run.generate import CustomFilter, Run, run_generate
from synth_empathy.run.workers import Outcome, Workers
from synth_empathy.schema import Manifest, Seed


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
        self._feeds: dict[Path | None, Feed] = {}

    def _parts(self) -> dict:
        return dict(programs=self.programs, generator_lm=self.generator_lm, judge_lm=self.judge_lm,
                    catalog=self.catalog, filters=self.filters)

    def plan(self) -> list[Seed]:
        """The seeds this config will turn into dialogues (deterministic for config.seed)."""
        catalog = self.catalog or load_catalog(self.config.personas_dir, self.config.scenarios_dir)
        return plan_for(catalog, self.config)

    def stream(self) -> DialogueStream:
        """Yield each kept dialogue as soon as it is made and has passed the filters; nothing is written.
        Each call is a new pass that makes new dialogues; the stream's `rejections` and `counts()` say what the
        filters dropped. For training over several epochs use `materialize` (or `to_hf_iterable_dataset`)."""
        return DialogueStream(self._outcomes(), self.config.n)

    def _outcomes(self) -> Iterator[Outcome]:
        run = Run(self.config, Path("."), **self._parts())
        # A bounded window of seeds in flight: a consumer that stops early does not wait for the whole plan.
        with Workers(run.make, self.config.concurrency, name="stream") as pool:
            yield from pool.as_finished(iter_plan(run.catalog, self.config), window=self.config.concurrency)

    def run(self, out_dir: str | Path, resume: bool = False) -> Manifest:
        """The CLI's path: write the corpus (kept, rejected, manifest, card) to `out_dir`; resumable."""
        return run_generate(self.config, Path(out_dir), resume=resume, **self._parts())

    def materialize(self, out_dir: str | Path | None = None) -> Feed:
        """The plan made once, on a background thread, and replayed to every reader (see `run.feed.Feed`).

        With `out_dir` the dialogues are written there as `run()` writes them (kept, rejected, manifest, card)
        and a folder of an earlier session is resumed, so a restarted training script re-reads what was made;
        without, they are kept in memory. One feed per folder per Generator: a second call returns the first.

        Example:
            >>> feed = gen.materialize("outputs/train")  # doctest: +SKIP
            >>> ds = feed.to_hf_iterable_dataset()        # doctest: +SKIP
            >>> feed.counts()                             # planned, kept, rejected, pending, reasons
        """
        key = None if out_dir is None else Path(out_dir).resolve()
        if key not in self._feeds:
            self._feeds[key] = self._memory_feed() if key is None else self._folder_feed(Path(out_dir))
        return self._feeds[key]

    def _memory_feed(self) -> Feed:
        def produce(add) -> None:
            for outcome in self._outcomes():
                add(outcome)

        return Feed(produce, self.config.n)

    def _folder_feed(self, out_dir: Path) -> Feed:
        previous = read_manifest(out_dir)
        if previous is not None and previous.config_fingerprint != self.config.fingerprint():
            raise UserError(f"{out_dir} holds a run with a different config (fingerprint "
                            f"{previous.config_fingerprint}, this one {self.config.fingerprint()}); use another "
                            f"folder or the same settings")
        kept, rejections = earlier_outcomes(out_dir) if previous is not None else ([], [])

        def produce(add) -> Manifest:
            return run_generate(self.config, out_dir, resume=previous is not None, on_outcome=add, **self._parts())

        return Feed(produce, self.config.n, kept, rejections, out_dir)

    def to_hf_iterable_dataset(self, out_dir: str | Path | None = None, *, rows: str = "hf",
                               system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        """A `datasets.IterableDataset` of `materialize(out_dir)`: rows as the exports write them, "hf" (the hf
        export's row: `messages` with the system message, seed fields, scores, models, the whole record) or
        "prompt-completion" (one TRL row per supporter reply). Generated once; every epoch, and TRL's peek at the
        first row, re-reads the same rows. `materialize(out_dir).counts()` says how many were rejected."""
        return self.materialize(out_dir).to_hf_iterable_dataset(rows, system_prompt)
