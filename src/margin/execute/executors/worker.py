"""A pool worker: one forked process running a Runner on its share of a run's attempts.

Whoever forks it — the run's own process or the pool's starter (`starter.py`) — gives it its
share (a Job), the run's budget and the write end of a pipe whose read end the run holds: each
finished record goes down that pipe (with its cache key), a b"H" message says which models a
fault halted, and an empty message says the worker is done. It dies with the process that
forked it, even when that one is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import json
import signal
from multiprocessing.connection import Connection

from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache
from margin.execute.executors.base import Job
from margin.execute.executors.forked import die_with_parent
from margin.execute.runner import Runner
from margin.journal.records import AttemptRecord
from margin.providers.gateway import forget_clients


class PipeSink:
    """A journal stand-in in a worker: each record (and its cache key) goes to the run."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        body = (cache_key or "").encode() + b"\0" + record.model_dump_json().encode()
        self.conn.send_bytes(b"R" + body)


def work(job: Job, budget: Budget, conn: Connection, parent: int) -> None:
    """The worker's body: run `job` with `budget`, each record sent on `conn`; `parent` is the
    pid of the process that forked it."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    forget_clients()  # clients copied from the parent belong to its event loop
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings, PipeSink(conn), cache, read_cache=job.read_cache, budget=budget
        )
        if job.probe is not None:
            runner.prefetched(job.probe.keys, job.probe.answers, job.probe.known)
        stats = asyncio.run(runner.run(job.attempts))
        if stats.halted:
            conn.send_bytes(b"H" + json.dumps(stats.halted).encode())
    finally:
        if cache is not None:
            cache.close()
        conn.send_bytes(b"")
        conn.close()
