"""Run attempts in one process, or split them over worker processes (one per core).

One process spends ~5 ms of CPU in litellm per call, so it tops out near 200 calls/s on this
kind of machine. Worker processes each run a Runner on a share of the attempts and stream
finished records back over a pipe; the parent stays the only writer of the journal and the
cache, so resuming works exactly as with one process. Limits are split, never multiplied: a
model with concurrency c (or rpm r) runs in at most min(c, r) workers whose shares add up to
exactly c and r; the spending cap is one account in shared memory.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from margin.config import ModelSpec, RunSettings
from margin.journal.records import AttemptRecord, Journal
from margin.plan import Attempt
from margin.providers.prices import LOCAL_PROVIDERS
from margin.run.budget import Budget
from margin.run.cache import CACHE_FILE, AnswerCache, CachedAnswer, JournalAndCache, cache_key
from margin.run.runner import IN_PROCESS_PROVIDERS, NoProgress, Progress, Runner, RunStats

AUTO_MIN_ATTEMPTS = 200
AUTO_MIN_CONCURRENCY = 16
PREFETCH_MAX = 20_000
"""Up to this many pending attempts, cached answers are read ahead in one pass (a few MB);
above it only which are cached, and each answer is read when its attempt runs."""
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


def execute(
    pending: Sequence[Attempt],
    settings: RunSettings,
    journal: Journal,
    *,
    cache_dir: Path | None,
    read_cache: bool = True,
    resumed: int = 0,
    spent: float = 0.0,
    progress: Progress | None = None,
) -> RunStats:
    """Run `pending` into `journal` with as many processes as `choose_workers` says.

    `spent` is what the run directory has already spent: the cap counts it.
    """
    for model in {a.model.name: a.model for a in pending}.values():
        model.resolve_api_key()  # a missing key is the user's one-line error, not a dead worker
    job = _Job(settings, cache_dir, read_cache, resumed, progress, Budget(settings.max_cost, spent))
    # What exists now (modules, suites, the plan) lives to the end of the run: frozen, no
    # collection during the run walks it again — nor, after a fork, copies it page by page.
    gc.freeze()
    try:
        if settings.executor == "ray":
            from margin.run.executors.ray import execute_ray

            count = None if settings.workers == "auto" else settings.workers
            return execute_ray(pending, journal, job, count, settings.ray_address)
        probe = _probe(pending, job)
        workers = min(choose_workers(pending, settings), choose_workers(probe.calls, settings))
        if not probe.calls or workers <= 1 or len(pending) < workers:
            return asyncio.run(_single(pending, journal, job, probe))
        return _pool(pending, journal, job, workers, probe)
    finally:
        gc.unfreeze()


@dataclass
class _Probe:
    """What the cache already answers, looked up in one pass before the run."""

    calls: list[Attempt]
    """The attempts that will call their model: those without an answer in the cache."""
    keys: dict[str, str] = field(default_factory=dict)
    """Each probed attempt's cache key, by attempt key (computed once)."""
    known: set[str] = field(default_factory=set)
    """The cache keys the cache holds an answer for."""
    answers: dict[str, CachedAnswer] = field(default_factory=dict)
    """Those answers, read ahead when the run is small enough to hold them (PREFETCH_MAX)."""


def _probe(pending: Sequence[Attempt], job: _Job) -> _Probe:
    """Look every attempt up in the cache at once. Workers are chosen for the calls only: answers
    replayed from the cache need neither worker processes nor litellm."""
    if job.cache_dir is None or not job.read_cache or not (job.cache_dir / CACHE_FILE).exists():
        return _Probe(list(pending))
    keys = {str(a.key): cache_key(a.model, a) for a in pending}
    cache = AnswerCache(job.cache_dir)
    try:
        if len(keys) <= PREFETCH_MAX:
            answers = cache.get_many(list(keys.values()))
            known = set(answers)
        else:
            answers, known = {}, cache.known(list(keys.values()))
    finally:
        cache.close()
    calls = [a for a in pending if keys[str(a.key)] not in known]
    return _Probe(calls, keys, known, answers)


@dataclass(frozen=True)
class _Job:
    """How to run a batch of attempts, whichever process runs it."""

    settings: RunSettings
    cache_dir: Path | None
    read_cache: bool
    resumed: int
    progress: Progress | None
    budget: Budget


async def _single(
    pending: Sequence[Attempt], journal: Journal, job: _Job, probe: _Probe | None = None
) -> RunStats:
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings,
            JournalAndCache(journal, cache),
            cache,
            read_cache=job.read_cache,
            budget=job.budget,
            progress=job.progress,
        )
        if probe is not None:
            runner.prefetched(probe.keys, probe.answers, probe.known)
        return await runner.run(pending, job.resumed)
    finally:
        if cache is not None:
            cache.close()


def _pool(
    pending: Sequence[Attempt], journal: Journal, job: _Job, workers: int, probe: _Probe
) -> RunStats:
    from margin.providers.gateway import warm

    # Import litellm and its first call's lazy imports once, before forking: each worker would
    # spend seconds of CPU on them. Then freeze them too (`execute` froze the rest), so that no
    # collector, the parent's or a worker's, walks them again.
    warm([a.model for a in pending])
    gc.freeze()
    context = get_context("fork")
    shares = split_limits(pending, job.settings, workers)
    children, pipes = [], []
    for settings, part in shares:
        receive, send = context.Pipe(duplex=False)
        share = replace(job, settings=settings, resumed=0, progress=None)
        child = context.Process(
            target=_child, args=(part, share, send, os.getpid(), probe), daemon=True
        )  # forked: the probe's keys and answers are inherited, not sent
        child.start()
        send.close()
        children.append(child)
        pipes.append(receive)
    stats = RunStats(total=job.resumed + len(pending), resumed=job.resumed)
    display = job.progress or NoProgress()
    display.start(stats)  # after forking: no display thread is copied into a child
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    sink = JournalAndCache(journal, cache)
    try:
        with _terminate_on_sigterm():
            _collect(pipes, sink, stats, display)
    except BaseException:
        for child in children:  # interrupted: stop making calls, keep what finished
            if child.is_alive():
                child.terminate()
        with suppress(Exception):
            _collect(pipes, sink, stats, display, deadline_s=STOP_GRACE_S)
        raise
    finally:
        for child in children:
            child.join(STOP_GRACE_S)
            if child.is_alive():
                child.kill()
                child.join()
            stats.failed_workers += child.exitcode != 0
        if cache is not None:
            cache.close()
        stats.not_run = stats.total - stats.resumed - stats.done
        stats.budget_stopped = job.budget.stopped
        display.stop(stats)
    return stats


def _collect(
    pipes: list[Connection],
    sink: JournalAndCache,
    stats: RunStats,
    display: Progress,
    deadline_s: float | None = None,
) -> None:
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
                stats.halted.update(_halted(body))
                continue
            key, _, line = body.partition(b"\0")
            record = AttemptRecord.model_validate_json(line)
            sink.append(record, key.decode() or None)
            stats.add(record)
            display.advance(stats)


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


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(part: list[Attempt], job: _Job, conn: Connection, parent: int, probe: _Probe) -> None:
    from margin.providers.gateway import forget_clients

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    forget_clients()  # clients copied from the parent belong to its event loop
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings, _PipeSink(conn), cache, read_cache=job.read_cache, budget=job.budget
        )
        runner.prefetched(probe.keys, probe.answers, probe.known)
        stats = asyncio.run(runner.run(part))
        if stats.halted:
            conn.send_bytes(b"H" + json.dumps(stats.halted).encode())
    finally:
        if cache is not None:
            cache.close()
        conn.send_bytes(b"")
        conn.close()
