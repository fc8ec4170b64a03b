"""The pool executor: attempts split over forked worker processes (one per core).

One process spends ~5 ms of CPU in litellm per call, so it tops out near 200 calls/s on this
kind of machine. Worker processes each run a Runner on a share of the attempts and stream
finished records back over a pipe; the parent stays the only writer of the journal and the
cache, so resuming works exactly as with one process. Limits are split, never multiplied: a
model with concurrency c (or rpm r) runs in at most min(c, r) workers whose shares add up to
exactly c and r; the spending cap is one account in shared memory.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess
from typing import Any

from margin.config import ModelSpec, RunSettings
from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache
from margin.execute.delivery import Delivery, RunStats
from margin.execute.executors.base import Job, Owner, owning
from margin.execute.lanes import IN_PROCESS_PROVIDERS
from margin.execute.runner import Runner
from margin.journal.records import AttemptRecord
from margin.plan import Attempt
from margin.providers.gateway import forget_clients, warm
from margin.providers.prices import LOCAL_PROVIDERS

AUTO_MIN_ATTEMPTS = 200
AUTO_MIN_CONCURRENCY = 16
STOP_GRACE_S = 5.0
"""After an interrupt, how long workers get to hand over what they finished."""


def choose_workers(pending: Sequence[Attempt], settings: RunSettings) -> int:
    """How many processes: `settings.workers` or, for "auto", one per core (up to 4) when the
    work is many remote calls. In-process models always run in one process, whatever was asked:
    each worker would load its own copy and they would fight over the cores."""
    models = {a.model.name: a.model for a in pending}.values()
    if any(m.provider in IN_PROCESS_PROVIDERS for m in models):
        return 1
    if settings.workers != "auto":
        return min(settings.workers, settings.concurrency)
    cores = os.cpu_count() or 1
    remote = all(m.provider not in LOCAL_PROVIDERS for m in models)
    concurrency = min(settings.concurrency, sum(m.concurrency for m in models))
    big = len(pending) >= AUTO_MIN_ATTEMPTS and concurrency >= AUTO_MIN_CONCURRENCY
    if cores < 2 or not remote or not big:
        return 1
    return min(cores, 4)


def pool_size(job: Job) -> int:
    """How many processes `job` is worth: `choose_workers` for its attempts and for the calls
    among them (answers replayed from the cache need neither worker processes nor litellm)."""
    calls = job.probe.calls if job.probe is not None else job.attempts
    return min(choose_workers(job.attempts, job.settings), choose_workers(calls, job.settings))


class PoolExecutor:
    """Worker processes, forked, each a Runner on a share of the attempts (limits split, one
    shared budget); they send their records over pipes to this process, the journal's owner."""

    def run(self, job: Job, owner: Owner) -> RunStats:
        # Import litellm and its first call's lazy imports once, before forking: each worker
        # would spend seconds of CPU on them. Then freeze them too (`execute` froze the rest),
        # so that no collector, the parent's or a worker's, walks them again.
        warm([a.model for a in job.attempts])
        gc.freeze()
        children, pipes = _fork(job, owner.budget, pool_size(job))
        # The display starts after forking: no display thread is copied into a child.
        with owning(job, owner) as delivery:
            try:
                with _terminate_on_sigterm():
                    _collect(pipes, delivery)
            except BaseException:
                for child in children:  # interrupted: stop making calls, keep what finished
                    if child.is_alive():
                        child.terminate()
                with suppress(Exception):
                    _collect(pipes, delivery, deadline_s=STOP_GRACE_S)
                raise
            finally:
                delivery.stats.failed_workers += _join(children)
                delivery.stats.budget_stopped = owner.budget.stopped
        return delivery.stats


def _fork(job: Job, budget: Budget, workers: int) -> tuple[list[ForkProcess], list[Connection]]:
    """One worker process per share of `job`, and the pipe each sends its records on."""
    context = get_context("fork")
    children, pipes = [], []
    for settings, part in split_limits(job.attempts, job.settings, workers):
        receive, send = context.Pipe(duplex=False)
        share = replace(job, attempts=part, settings=settings)
        child = context.Process(
            target=_child, args=(share, budget, send, os.getpid()), daemon=True
        )  # forked: the probe's keys and answers are inherited, not sent
        child.start()
        send.close()
        children.append(child)
        pipes.append(receive)
    return children, pipes


def _join(children: list[ForkProcess]) -> int:
    """Wait for the workers (killing any still alive after STOP_GRACE_S); how many failed."""
    failed = 0
    for child in children:
        child.join(STOP_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
        failed += child.exitcode != 0
    return failed


def _collect(pipes: list[Connection], delivery: Delivery, deadline_s: float | None = None) -> None:
    """Deliver the records the workers send until every pipe is closed (or `deadline_s` passes
    with nothing to read)."""
    live = list(pipes)
    while live:
        ready = wait(live, timeout=deadline_s)
        if not ready:
            return
        for conn in ready:
            assert isinstance(conn, Connection)
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                data = b""
            if not data:
                live.remove(conn)
                continue
            kind, body = data[:1], data[1:]
            if kind == b"H":
                delivery.stats.halted.update(_halted(body))
                continue
            key, _, line = body.partition(b"\0")
            delivery.receive(key.decode() or None, line)


def _halted(body: bytes) -> dict[str, str]:
    value: Any = json.loads(body)
    return {str(k): str(v) for k, v in value.items()}


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the parent like Ctrl-C does: its workers are stopped, nothing is lost."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def split_limits(
    pending: Sequence[Attempt], settings: RunSettings, workers: int
) -> list[tuple[RunSettings, list[Attempt]]]:
    """Deal attempts to workers with every limit split, never multiplied.

    A model with concurrency c and rpm r goes to k = min(workers, c, r) workers whose shares of
    c and r add up to exactly c and r; the global concurrency is split the same way.
    """
    workers = max(1, min(workers, settings.concurrency))
    models: dict[str, ModelSpec] = {a.model.name: a.model for a in pending}
    copies: dict[tuple[str, int], ModelSpec] = {}
    homes: dict[str, list[int]] = {}
    for offset, model in enumerate(models.values()):
        k = min(workers, model.concurrency, model.rpm or workers)
        homes[model.name] = [(offset + i) % workers for i in range(k)]
        for i, worker in enumerate(homes[model.name]):
            update: dict[str, object] = {"concurrency": _share(model.concurrency, k, i)}
            if model.rpm:
                update["rpm"] = _share(model.rpm, k, i)
            copies[(model.name, worker)] = model.model_copy(update=update)
    parts: list[list[Attempt]] = [[] for _ in range(workers)]
    dealt: dict[str, int] = {}
    for attempt in pending:
        name = attempt.model.name
        home = homes[name][dealt.get(name, 0) % len(homes[name])]
        dealt[name] = dealt.get(name, 0) + 1
        parts[home].append(replace(attempt, model=copies[(name, home)]))
    return [
        (settings.model_copy(update={"concurrency": _share(settings.concurrency, workers, i)}), p)
        for i, p in enumerate(parts)
        if p
    ]


def _share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split into `parts` whole shares that add up to `total`."""
    return total // parts + (1 if index < total % parts else 0)


class _PipeSink:
    """A journal stand-in in a worker: each record (and its cache key) goes to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        body = (cache_key or "").encode() + b"\0" + record.model_dump_json().encode()
        self.conn.send_bytes(b"R" + body)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(job: Job, budget: Budget, conn: Connection, parent: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    forget_clients()  # clients copied from the parent belong to its event loop
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings, _PipeSink(conn), cache, read_cache=job.read_cache, budget=budget
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
