"""Each finished record's way to the run's one journal-and-cache owner: journaled, counted, shown.

Wherever an attempt runs — a Runner in this process, in a forked worker or on a Ray actor — its
record is delivered the same way, by `Delivery`: to a sink (the owner's journal and cache, or a
pipe or queue to the owner), then into the totals and the progress display. A worker's records
cross to the owner as JSON; the owner's Delivery takes each with `receive`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from margin.journal.records import AttemptRecord, JournalSink


@dataclass
class RunStats:
    """Running totals, for the progress display and the closing summary."""

    total: int
    resumed: int = 0
    done: int = 0
    passed: int = 0
    infra_errors: int = 0
    cache_hits: int = 0
    retries: int = 0
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    budget_stopped: bool = False
    not_run: int = 0
    failed_workers: int = 0
    halted: dict[str, str] = field(default_factory=dict)
    """Models stopped early because the provider refused every call, with the reason."""
    judges_skipped: int = 0
    """Attempts whose judges were not asked: a deterministic check had already failed."""

    def add(self, record: AttemptRecord) -> None:
        """Count one finished attempt."""
        self.done += 1
        self.passed += bool(record.passed)
        self.infra_errors += record.infra_error
        self.cache_hits += record.cache_hit
        self.retries += record.retries
        self.spent_usd += (record.cost_usd or 0.0) + (record.judge_cost_usd or 0.0)
        self.saved_usd += record.cost_saved_usd
        self.judges_skipped += record.judge_skipped

    @property
    def judged(self) -> int:
        """Attempts with a verdict (infra errors excluded)."""
        return self.done - self.infra_errors


class Progress(Protocol):
    """What the runner tells a progress display."""

    def start(self, stats: RunStats) -> None: ...
    def advance(self, stats: RunStats) -> None: ...
    def stop(self, stats: RunStats) -> None: ...


class NoProgress:
    """A silent progress display."""

    def start(self, stats: RunStats) -> None:
        return None

    def advance(self, stats: RunStats) -> None:
        return None

    def stop(self, stats: RunStats) -> None:
        return None


class Delivery:
    """The per-record contract: a finished record goes to `sink` (with the cache key its answer
    is cached under, if any), then into `stats` and onto the `progress` display."""

    def __init__(
        self, sink: JournalSink, stats: RunStats, progress: Progress | None = None
    ) -> None:
        self.sink = sink
        self.stats = stats
        self.progress = progress or NoProgress()

    def deliver(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        """Journal (or send on) `record`, count it and show it."""
        self.sink.append(record, cache_key)
        self.stats.add(record)
        self.progress.advance(self.stats)

    def receive(self, cache_key: str | None, line: str | bytes) -> None:
        """Deliver a record a worker sent as JSON."""
        self.deliver(AttemptRecord.model_validate_json(line), cache_key)
