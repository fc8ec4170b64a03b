"""Progress displays: a live rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from margin.execute.delivery import RunStats


def _summary(stats: RunStats) -> str:
    rate = f"{stats.passed / stats.judged:.0%}" if stats.judged else "–"
    return (
        f"pass {rate} · infra errors {stats.infra_errors} · cache hits {stats.cache_hits}"
        f" · spent ${stats.spent_usd:.4f}"
    )


class PlainProgress:
    """A line every `every_s` seconds (and at the end), for logs and CI."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._started = 0.0
        self._last = 0.0

    def start(self, stats: RunStats) -> None:
        self._started = self._last = time.monotonic()
        print(
            f"margin: {stats.total} attempts, {stats.resumed} already in the journal",
            file=self.stream,
        )

    def advance(self, stats: RunStats) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._line(stats, now)

    def stop(self, stats: RunStats) -> None:
        self._line(stats, time.monotonic())

    def _line(self, stats: RunStats, now: float) -> None:
        finished = stats.resumed + stats.done
        elapsed = now - self._started
        left = stats.total - finished
        eta = f"{left * elapsed / stats.done:.0f} s" if stats.done else "–"
        print(
            f"margin: {finished}/{stats.total} · {_summary(stats)} · ETA {eta}",
            file=self.stream,
            flush=True,
        )


class RichProgress:
    """A live bar: attempts done/total, pass rate so far, infra errors, spend, ETA."""

    def __init__(self) -> None:
        self._progress = Bar(
            TextColumn("margin"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task("run", total=1, summary="")

    def start(self, stats: RunStats) -> None:
        self._progress.update(self._task, total=stats.total, completed=stats.resumed, summary="")
        self._progress.start()

    def advance(self, stats: RunStats) -> None:
        self._progress.update(
            self._task, completed=stats.resumed + stats.done, summary=_summary(stats)
        )

    def stop(self, stats: RunStats) -> None:
        self.advance(stats)
        self._progress.stop()


def progress_for_terminal() -> PlainProgress | RichProgress:
    """A live bar when stderr is a terminal, plain lines otherwise."""
    return RichProgress() if sys.stderr.isatty() else PlainProgress()
