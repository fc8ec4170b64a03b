"""The Ray executor: attempts run over a Ray cluster (`margin run --executor ray`), the driver
the journal's writer.

Each Ray worker actor runs margin's own Runner on a share of the attempts — the same retries,
cache reads, validators and judges as on one machine — and puts every finished record on a
Ray queue; the driver takes them off and appends them to the journal (and the cache), so it
stays the only writer and resume works exactly as on one machine. Limits are held across the
cluster: one limiter actor per model holds its concurrency and requests-per-minute for every
worker together (not limit ÷ workers; a dead worker's slots come back once its calls have ended
for certain), and one budget actor holds the spending cap. Ray's usage statistics and dashboard
are off; a local instance binds to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiolimiter import AsyncLimiter

from margin.errors import UserError
from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache
from margin.execute.delivery import Delivery, RunStats
from margin.execute.executors.base import Job, Owner, owning
from margin.execute.runner import Runner
from margin.journal.records import AttemptRecord
from margin.plan import Attempt
from margin.providers.gateway import longest_call_s

INSTALL = "pip install 'margin[ray]'"
_POLL_S = 0.05


def ray_module(local: bool = True) -> Any:
    """Ray, imported quietly (usage statistics off); a UserError naming the install if absent.
    `local`: a local instance is to be started, on loopback only — Ray otherwise takes the
    address of the machine's outward interface (read when Ray is first imported)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # A local instance's workers do the run's own work: at Ray's default niceness (15) they
        # starve beside any other busy process on the machine.
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        import ray  # optional dependency (margin[ray]), loaded only for --executor ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray: {INSTALL}") from None
    return ray


def start(address: str | None) -> Any:
    """Connect to the cluster at `address`, else start a local instance on loopback."""
    ray = ray_module(local=address is None)
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        ray.init(address=address, **options)
    return ray


class _RemoteBudget(Budget):
    """The run's budget held by a Ray actor (when there is a cap), seen alike by every worker."""

    def __init__(self, cap: float | None, account: Any) -> None:
        super().__init__(cap)
        self._account = account

    def _ask(self, method: str, *args: float) -> Any:
        import ray  # optional dependency (margin[ray]): present wherever this budget lives

        return ray.get(getattr(self._account, method).remote(*args))

    @property
    def stopped(self) -> bool:
        return self.cap is not None and bool(self._ask("is_stopped"))

    def reserve(self, amount: float) -> bool:
        return True if self.cap is None else bool(self._ask("reserve", amount))

    def settle(self, reserved: float, billed: float) -> None:
        if self.cap is not None:
            self._ask("settle", reserved, billed)


class ModelLimiter:
    """One model's concurrency and rate for the whole cluster (a Ray actor's state).

    Slots are counted per holder (a worker), so a dead worker's come back — but only once its
    calls have ended for certain, `call_s` (the longest a call can last) after its death was
    noticed: its process is gone, yet the provider may still be working on what it sent.
    Handing them back at once let the other workers put twice the limit in flight.
    """

    def __init__(self, concurrency: int, rpm: int | None, call_s: float) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.rate = AsyncLimiter(1, 60.0 / rpm) if rpm else None
        self.call_s = call_s
        self.held: dict[int, int] = {}
        self.dead: set[int] = set()

    async def acquire(self, holder: int) -> None:
        await self.slots.acquire()
        if holder in self.dead:  # asked before its worker died: no call will be made
            self.slots.release()
            return
        self.held[holder] = self.held.get(holder, 0) + 1
        if self.rate is not None:
            await self.rate.acquire()

    async def release(self, holder: int) -> None:
        if self.held.get(holder, 0) > 0:
            self.held[holder] -= 1
            self.slots.release()

    async def forget(self, holder: int) -> None:
        """`holder` died: its slots come back once its calls have ended; the calls it still had
        queued here give theirs back as soon as they get one (else nobody would)."""
        self.dead.add(holder)
        held = self.held.pop(holder, 0)
        if held:
            asyncio.get_running_loop().call_later(self.call_s, self._give_back, held)

    def _give_back(self, count: int) -> None:
        for _ in range(count):
            self.slots.release()


class RecordQueue:
    """Finished records on their way to the driver, taken in batches (a Ray actor's state)."""

    def __init__(self) -> None:
        self.items: list[tuple[str | None, str]] = []

    def put(self, item: tuple[str | None, str]) -> None:
        self.items.append(item)

    def take(self) -> list[tuple[str | None, str]]:
        items, self.items = self.items, []
        return items


class BudgetAccount:
    """The run's budget for the whole cluster (a Ray actor's state)."""

    def __init__(self, cap: float | None, spent: float) -> None:
        self.budget = Budget(cap, spent)

    def reserve(self, amount: float) -> bool:
        return self.budget.reserve(amount)

    def settle(self, reserved: float, billed: float) -> None:
        self.budget.settle(reserved, billed)

    def is_stopped(self) -> bool:
        return self.budget.stopped


class _QueueSink:
    """A journal stand-in on a Ray worker: each record (and its cache key) goes on the queue."""

    def __init__(self, ray: Any, queue: Any) -> None:
        self.ray, self.queue = ray, queue

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        self.ray.get(self.queue.put.remote((cache_key, record.model_dump_json())))


def _shared_slot(limiter: Any, holder: int) -> Callable[[], AbstractAsyncContextManager[None]]:
    """A slot of the model's cluster-wide limiter, held by `holder` for one call."""

    @asynccontextmanager
    async def slot() -> AsyncIterator[None]:
        await limiter.acquire.remote(holder)
        try:
            yield
        finally:
            await limiter.release.remote(holder)

    return slot


class RayWorker:
    """Runs margin's Runner on a share of the attempts; records go on the queue (a Ray actor)."""

    def run(
        self,
        job: Job,
        holder: int,
        cap: float | None,
        limiters: dict[str, Any],
        account: Any,
        queue: Any,
    ) -> dict[str, str]:
        """Run `job`; the models halted early, with the reason."""
        import ray  # optional dependency (margin[ray]): this runs on a Ray worker

        cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
        try:
            runner = Runner(
                job.settings,
                _QueueSink(ray, queue),
                cache,
                read_cache=job.read_cache,
                budget=_RemoteBudget(cap, account),
                shared_limits={name: _shared_slot(lim, holder) for name, lim in limiters.items()},
            )
            stats = asyncio.run(runner.run(job.attempts))
            return stats.halted
        finally:
            if cache is not None:
                cache.close()


def _actors(ray: Any) -> tuple[Any, Any, Any, Any]:
    """The limiter, budget, queue and worker actor classes (made once Ray is imported)."""
    limiter = ray.remote(num_cpus=0, max_concurrency=100_000)(ModelLimiter)
    account = ray.remote(num_cpus=0)(BudgetAccount)
    queue = ray.remote(num_cpus=0, max_concurrency=1000)(RecordQueue)
    # Calls wait on the network, not the CPU: a worker reserves no CPU, so asking for more
    # workers than the cluster has cores never leaves one unscheduled; SPREAD deals them over
    # the nodes.
    worker = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(RayWorker)
    return limiter, account, queue, worker


@dataclass(frozen=True)
class _Cluster:
    """The actors of one run: limiters by model, the budget account, the record queue, the
    workers, and each worker's pending result with its holder number."""

    limiters: dict[str, Any]
    account: Any
    queue: Any
    workers: list[Any]
    holders: dict[Any, int]


class RayExecutor:
    """Worker actors over a Ray cluster, each a Runner on a share of the attempts; limits and
    the budget held cluster-wide by actors; records come back to this process on a queue."""

    def run(self, job: Job, owner: Owner) -> RunStats:
        """`settings.workers` worker actors (for "auto": one per CPU of the cluster)."""
        ray = start(job.settings.ray_address)
        count = None if job.settings.workers == "auto" else job.settings.workers
        cluster = _launch(ray, job, owner.budget, count)
        with owning(job, owner) as delivery:
            try:
                _collect(ray, cluster, delivery)
            finally:
                stopped = ray.get(cluster.account.is_stopped.remote())
                delivery.stats.budget_stopped = bool(stopped)
                limiters = cluster.limiters.values()
                for actor in [*cluster.workers, cluster.queue, cluster.account, *limiters]:
                    ray.kill(actor)
        return delivery.stats


def _launch(ray: Any, job: Job, budget: Budget, workers: int | None) -> _Cluster:
    """Start the actors and give each worker its share of `job` (dealt round-robin)."""
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    limiter_cls, account_cls, queue_cls, worker_cls = _actors(ray)
    models = {a.model.name: a.model for a in job.attempts}
    limiters = {
        name: limiter_cls.remote(model.concurrency, model.rpm, longest_call_s(model))
        for name, model in models.items()
    }
    account = account_cls.remote(budget.cap, budget.spent)
    queue = queue_cls.remote()
    parts: list[list[Attempt]] = [[] for _ in range(max(1, workers))]
    for index, attempt in enumerate(job.attempts):
        parts[index % len(parts)].append(attempt)
    parts = [p for p in parts if p]
    actors = [worker_cls.remote() for _ in parts]
    shares = [replace(job, attempts=part, probe=None) for part in parts]  # plain data to send
    refs = [
        actor.run.remote(share, holder, budget.cap, limiters, account, queue)
        for holder, (actor, share) in enumerate(zip(actors, shares, strict=True))
    ]
    holders = {ref: holder for holder, ref in enumerate(refs)}
    return _Cluster(limiters, account, queue, actors, holders)


def _collect(ray: Any, cluster: _Cluster, delivery: Delivery) -> None:
    """Deliver the workers' records as they come, until every worker has ended."""
    waiting = list(cluster.holders)
    while waiting:
        done, waiting = ray.wait(waiting, timeout=_POLL_S)
        _drain(ray, cluster.queue, delivery)
        for ref in done:
            try:
                delivery.stats.halted.update(ray.get(ref))
            except ray.exceptions.RayError:
                delivery.stats.failed_workers += 1  # its finished records are already journaled
                for limiter in cluster.limiters.values():
                    ray.get(limiter.forget.remote(cluster.holders[ref]))
    time.sleep(_POLL_S)
    _drain(ray, cluster.queue, delivery)


def _drain(ray: Any, queue: Any, delivery: Delivery) -> None:
    for key, line in ray.get(queue.take.remote()):
        delivery.receive(key, line)
