"""The pool executor: attempts split over forked worker processes (one per core).

One process spends ~5 ms of CPU in litellm per call, so it tops out near 200 calls/s on this
kind of machine. Worker processes each run a Runner on a share of the attempts and stream
finished records back over a pipe; the parent stays the only writer of the journal and the
cache, so resuming works exactly as with one process. Limits are split, never multiplied: a
model with concurrency c (or rpm r) runs in at most min(c, r) workers whose shares add up to
exactly c and r; the spending cap is one account in shared memory.

`margin run` forks a starter as it begins (`starter.py`): it imports litellm while the run loads
its inputs and forks the workers when asked; without one, the workers are forked from here.
"""

from __future__ import annotations

import gc
import json
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess
from typing import Any, Protocol

from margin.config import ModelSpec, RunSettings
from margin.execute.budget import Budget
from margin.execute.delivery import Delivery, RunStats
from margin.execute.executors.base import Job, Owner, owning
from margin.execute.executors.starter import current
from margin.execute.executors.worker import work
from margin.execute.lanes import IN_PROCESS_PROVIDERS
from margin.plan import Attempt
from margin.providers.gateway import warm
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


def could_pool(attempts: Sequence[Attempt], settings: RunSettings) -> bool:
    """Whether a run of `attempts` (before the cache answers any) may use worker processes."""
    return settings.executor != "ray" and choose_workers(attempts, settings) > 1


def pool_size(job: Job) -> int:
    """How many processes `job` is worth: `choose_workers` for its attempts and for the calls
    among them (answers replayed from the cache need neither worker processes nor litellm)."""
    calls = job.probe.calls if job.probe is not None else job.attempts
    return min(choose_workers(job.attempts, job.settings), choose_workers(calls, job.settings))


class PoolExecutor:
    """Worker processes, each a Runner on a share of the attempts (limits split, one shared
    budget), forked by the run's starter when it has one (`starter.py`), else by this process;
    they send their records over pipes to this process, the journal's owner."""

    def run(self, job: Job, owner: Owner) -> RunStats:
        shares = [
            replace(job, attempts=part, settings=settings)
            for settings, part in split_limits(job.attempts, job.settings, pool_size(job))
        ]
        starter = current()
        workers: Workers | None = starter.start(shares, owner.budget) if starter else None
        if workers is None:
            workers = _fork(shares, owner.budget)
        # The display starts after forking: no display thread is copied into a child.
        with owning(job, owner) as delivery:
            try:
                with _terminate_on_sigterm():
                    _collect(workers.pipes, delivery)
            except BaseException:
                workers.terminate()  # interrupted: stop making calls, keep what finished
                with suppress(Exception):
                    _collect(workers.pipes, delivery, deadline_s=STOP_GRACE_S)
                raise
            finally:
                delivery.stats.failed_workers += workers.join(STOP_GRACE_S)
                delivery.stats.budget_stopped = owner.budget.stopped or workers.budget_stopped
        return delivery.stats


class Workers(Protocol):
    """A batch of worker processes, whoever forked them: their record pipes, stopped at once
    by `terminate`, waited for by `join` (how many failed)."""

    pipes: list[Connection]
    budget_stopped: bool

    def terminate(self) -> None: ...

    def join(self, grace_s: float) -> int: ...


@dataclass
class Forked:
    """Workers this process forked (they share its budget)."""

    children: list[ForkProcess]
    pipes: list[Connection]
    budget_stopped: bool = False

    def terminate(self) -> None:
        for child in self.children:
            if child.is_alive():
                child.terminate()

    def join(self, grace_s: float) -> int:
        """Wait for the workers (killing any still alive after `grace_s`); how many failed."""
        failed = 0
        for child in self.children:
            child.join(grace_s)
            if child.is_alive():
                child.kill()
                child.join()
            failed += child.exitcode != 0
        return failed


def _fork(shares: list[Job], budget: Budget) -> Forked:
    """One worker process per share, forked here, and the pipe each sends its records on."""
    # Import litellm and its first call's lazy imports once, before forking: each worker would
    # spend seconds of CPU on them. Then freeze them too (`execute` froze the rest), so that
    # no collector, the parent's or a worker's, walks them again.
    warm([a.model for share in shares for a in share.attempts])
    gc.freeze()
    context = get_context("fork")
    children, pipes = [], []
    for share in shares:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=work, args=(share, budget, send, os.getpid()), daemon=True
        )  # forked: the probe's keys and answers are inherited, not sent
        child.start()
        send.close()
        children.append(child)
        pipes.append(receive)
    return Forked(children, pipes)


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
