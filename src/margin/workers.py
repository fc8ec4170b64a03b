"""Run attempts in one process, or split them over worker processes (one per core).

One process spends ~6 ms of CPU in litellm per call, so it tops out near 150 calls/s on this
kind of machine. Worker processes each run a Runner on a shard of the attempts, with the
model's limits divided between them, and stream finished records back over a pipe; the parent
stays the journal's only writer, so resuming works exactly as with one process.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path

from margin.cache import AnswerCache
from margin.config import ModelSpec, RunSettings
from margin.journal import AttemptRecord, JournalSink
from margin.plan import Attempt
from margin.prices import LOCAL_PROVIDERS
from margin.runner import IN_PROCESS_PROVIDERS, NoProgress, Progress, Runner, RunStats

AUTO_MIN_ATTEMPTS = 200
AUTO_MIN_CONCURRENCY = 16


def choose_workers(pending: Sequence[Attempt], settings: RunSettings) -> int:
    """`settings.workers`, or for "auto": one per core when the work is many remote calls."""
    if settings.workers != "auto":
        return settings.workers
    cores = os.cpu_count() or 1
    models = {a.model.name: a.model for a in pending}.values()
    remote = all(m.provider not in IN_PROCESS_PROVIDERS | LOCAL_PROVIDERS for m in models)
    concurrency = min(settings.concurrency, sum(m.concurrency for m in models))
    big = len(pending) >= AUTO_MIN_ATTEMPTS and concurrency >= AUTO_MIN_CONCURRENCY
    if cores < 2 or not remote or not big or settings.max_cost is not None:
        return 1
    return min(cores, 4)


def execute(
    pending: Sequence[Attempt],
    settings: RunSettings,
    journal: JournalSink,
    *,
    cache_dir: Path | None,
    read_cache: bool = True,
    resumed: int = 0,
    progress: Progress | None = None,
) -> RunStats:
    """Run `pending` into `journal` with as many processes as `choose_workers` says."""
    for model in {a.model.name: a.model for a in pending}.values():
        model.resolve_api_key()  # a missing key is the user's one-line error, not a dead worker
    job = _Job(settings, cache_dir, read_cache, resumed, progress)
    workers = choose_workers(pending, settings)
    if workers <= 1 or len(pending) < workers:
        return asyncio.run(_single(pending, journal, job))
    return _pool(pending, journal, job, workers)


@dataclass(frozen=True)
class _Job:
    """How to run a batch of attempts, whichever process runs it."""

    settings: RunSettings
    cache_dir: Path | None
    read_cache: bool
    resumed: int
    progress: Progress | None


async def _single(pending: Sequence[Attempt], journal: JournalSink, job: _Job) -> RunStats:
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings, journal, cache, read_cache=job.read_cache, progress=job.progress
        )
        return await runner.run(pending, job.resumed)
    finally:
        if cache is not None:
            cache.close()


def _pool(pending: Sequence[Attempt], journal: JournalSink, job: _Job, workers: int) -> RunStats:
    context = multiprocessing.get_context("fork")
    shards = shard(pending, job.settings, workers)
    concurrency = math.ceil(job.settings.concurrency / workers)
    share = replace(
        job,
        settings=job.settings.model_copy(update={"concurrency": concurrency}),
        resumed=0,
        progress=None,
    )
    children, pipes = [], []
    for part in shards:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(part, share, send), daemon=True)
        child.start()
        send.close()
        children.append(child)
        pipes.append(receive)
    stats = RunStats(total=job.resumed + len(pending), resumed=job.resumed)
    display = job.progress or NoProgress()
    display.start(stats)  # after forking: no display thread is copied into a child
    try:
        _collect(pipes, journal, stats, display)
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
            stats.failed_workers += child.exitcode != 0
        stats.not_run = stats.total - stats.resumed - stats.done
        display.stop(stats)
    return stats


def _collect(
    pipes: list[Connection], journal: JournalSink, stats: RunStats, display: Progress
) -> None:
    live = list(pipes)
    while live:
        for conn in wait(live):
            assert isinstance(conn, Connection)
            try:
                data = conn.recv_bytes()
            except EOFError:
                data = b""
            if not data:
                live.remove(conn)
                continue
            record = AttemptRecord.model_validate_json(data)
            journal.append(record)
            stats.add(record)
            display.advance(stats)


def shard(pending: Sequence[Attempt], settings: RunSettings, workers: int) -> list[list[Attempt]]:
    """Deal attempts round-robin to `workers` shards, each model's limits divided among them."""
    scaled: dict[str, ModelSpec] = {}
    for attempt in pending:
        model = attempt.model
        if model.name not in scaled:
            update: dict[str, object] = {
                "concurrency": max(1, math.ceil(model.concurrency / workers))
            }
            if model.rpm:
                update["rpm"] = max(1, model.rpm // workers)
            scaled[model.name] = model.model_copy(update=update)
    parts: list[list[Attempt]] = [[] for _ in range(workers)]
    for index, attempt in enumerate(pending):
        parts[index % workers].append(replace(attempt, model=scaled[attempt.model.name]))
    return parts


class _PipeJournal:
    """A journal stand-in in a worker: each record goes to the parent over the pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def append(self, record: AttemptRecord) -> None:
        self.conn.send_bytes(record.model_dump_json().encode())


def _child(part: list[Attempt], job: _Job, conn: Connection) -> None:
    from margin.providers.gateway import forget_clients

    forget_clients()  # clients copied from the parent belong to its event loop
    try:
        asyncio.run(_single(part, _PipeJournal(conn), job))
    finally:
        conn.send_bytes(b"")
        conn.close()
