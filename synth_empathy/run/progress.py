"""Progress of a generate run: a live bar on a terminal, plain log lines elsewhere (CI, pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from synth_empathy.corpus.store import Tally
from synth_empathy.schema import Dialogue, Rejection


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts a run's outcomes and derives its rates; the subclasses show them.

    Rates are over this session only, so a resumed run's ETA is not flattered by the records it found.
    """

    def __init__(self, planned: int) -> None:
        self.planned = planned
        self.done = 0  # planned seeds written; the folder's kept/rejected counts are the run's Tally
        self.tally = Tally()
        self._done_before = 0
        self._calls: Callable[[], int] = lambda: 0
        self._started = time.monotonic()

    @property
    def kept(self) -> int:
        return self.tally.kept

    @property
    def rejected(self) -> int:
        return self.tally.rejected

    def start(self, done: int, tally: Tally, calls: Callable[[], int] | None = None) -> None:
        """The run begins with `done` planned seeds already written; `tally` counts the folder's records as the
        run adds them."""
        self.done, self.tally = done, tally
        self._done_before = done
        self._calls = calls or self._calls
        self._started = time.monotonic()

    def advance(self, outcome: Dialogue | Rejection) -> None:
        """One more planned seed written (the run's tally has counted it already)."""
        self.done += 1

    def close(self) -> None:
        pass

    def calls_per_s(self) -> float:
        elapsed = time.monotonic() - self._started
        return self._calls() / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        made = self.done - self._done_before
        if made <= 0:
            return None
        return max(0, self.planned - self.done) * (time.monotonic() - self._started) / made

    def status(self) -> str:
        return (f"kept {self.kept}, rejected {self.rejected} | {self.calls_per_s():.1f} calls/s | "
                f"ETA {_duration(self.eta_s())}")


class LogProgress(Progress):
    """One plain line per finished seed, for logs that are not a terminal."""

    def __init__(self, planned: int, stream: TextIO | None = None) -> None:
        super().__init__(planned)
        self.stream = stream or sys.stderr

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, done: int, tally: Tally, calls: Callable[[], int] | None = None) -> None:
        super().start(done, tally, calls)
        if done:
            self._line(f"resuming: {done} of {self.planned} seeds already written ({self.kept} kept, "
                       f"{self.rejected} rejected)")

    def advance(self, outcome: Dialogue | Rejection) -> None:
        super().advance(outcome)
        what = "kept" if isinstance(outcome, Dialogue) else f"rejected ({', '.join(outcome.reasons)})"
        self._line(f"[{self.done}/{self.planned}] {outcome.id} {what} | {self.status()}")


class _StatusColumn(ProgressColumn):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task) -> Text:
        return Text(self.progress.status())


class BarProgress(Progress):
    """A live rich bar: done/planned, kept, rejected, calls/s, ETA; redrawn a few times a second."""

    def __init__(self, planned: int, console: Console | None = None) -> None:
        super().__init__(planned)
        self._bar = RichProgress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), _StatusColumn(self),
                                 console=console or Console(stderr=True), transient=False)
        self._task = self._bar.add_task("generate", total=planned)

    def start(self, done: int, tally: Tally, calls: Callable[[], int] | None = None) -> None:
        super().start(done, tally, calls)
        self._bar.update(self._task, completed=done)
        self._bar.start()

    def advance(self, outcome: Dialogue | Rejection) -> None:
        super().advance(outcome)
        self._bar.update(self._task, completed=self.done)

    def close(self) -> None:
        self._bar.stop()


def progress_for(planned: int, console: Console | None = None) -> Progress:
    """A bar when stderr is a terminal, else log lines."""
    console = console or Console(stderr=True)
    return BarProgress(planned, console) if console.is_terminal else LogProgress(planned, console.file)
