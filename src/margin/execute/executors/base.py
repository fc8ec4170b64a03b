"""What every executor is given and what it promises.

An executor runs a `Job` (attempts, settings, cache) for an `Owner` (the journal, the budget
account, the display — what stays in the process that drives the run). Whatever process makes
a call, each finished record reaches the owner's journal and cache, in that order, as it
finishes: a Delivery in the worker's Runner sends it, and — for worker processes and Ray actors
— the owner's Delivery (`owning`) takes it in. The owner stays the only writer of the journal
and the cache, so a run resumes alike whichever executor ran it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from margin.config import RunSettings
from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache, CacheProbe, JournalAndCache
from margin.execute.delivery import Delivery, NoProgress, Progress, RunStats
from margin.journal.records import Journal
from margin.plan import Attempt


@dataclass(frozen=True)
class Job:
    """A batch of attempts and how to run them: what an executor is given, and (a share of it)
    what each of its workers runs. Plain data: a worker process or a Ray actor gets a copy."""

    attempts: Sequence[Attempt]
    settings: RunSettings
    cache_dir: Path | None = None
    read_cache: bool = True
    probe: CacheProbe | None = None
    """What the cache already answers (None: not probed; each attempt is looked up as it runs)."""


@dataclass(frozen=True)
class Owner:
    """What stays in the process that drives the run, whichever executor runs the job."""

    journal: Journal
    """The run's journal; its answers go to the job's cache after it (JournalAndCache)."""
    budget: Budget
    """The run's spending account (its earlier spend included)."""
    resumed: int = 0
    """Attempts already in the journal, for the display's totals."""
    progress: Progress | None = None


class Executor(Protocol):
    """Where attempts run: in this process (inline), in forked worker processes (pool) or over
    a Ray cluster (ray). Returns the run's totals once every attempt finished or was stopped."""

    def run(self, job: Job, owner: Owner) -> RunStats:
        """Run `job`, each finished record delivered to `owner` as it finishes."""
        ...


@contextmanager
def owning(job: Job, owner: Owner) -> Iterator[Delivery]:
    """The owner's side of a run whose records come from other processes: the display started,
    the cache open, and a Delivery that journals, caches, counts and shows each record; at the
    end what was not run is counted and the display stopped."""
    stats = RunStats(total=owner.resumed + len(job.attempts), resumed=owner.resumed)
    display = owner.progress or NoProgress()
    display.start(stats)
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        yield Delivery(JournalAndCache(owner.journal, cache), stats, display)
    finally:
        if cache is not None:
            cache.close()
        stats.not_run = stats.total - stats.resumed - stats.done
        display.stop(stats)
