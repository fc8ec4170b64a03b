"""Where attempts run: one `Executor` protocol, three executors chosen by name.

`inline` runs every attempt in this process; `pool` splits them over forked worker processes
(many remote calls: one process tops out near 200 calls/s); `ray` over a Ray cluster. `margin
run --executor local` (the default) means inline or pool, chosen by `executor_for` from the
calls left once the cache has answered what it can; `--executor ray` means ray.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from margin.config import RunSettings
from margin.execute.budget import Budget
from margin.execute.cache import probe_cache
from margin.execute.delivery import Progress, RunStats
from margin.execute.executors.base import Executor, Job, Owner
from margin.execute.executors.inline import InlineExecutor
from margin.execute.executors.pool import PoolExecutor, pool_size
from margin.execute.executors.ray import RayExecutor
from margin.journal.records import Journal
from margin.plan import Attempt

__all__ = ["EXECUTORS", "Executor", "Job", "Owner", "execute", "executor_for"]

EXECUTORS: dict[str, Executor] = {
    "inline": InlineExecutor(),
    "pool": PoolExecutor(),
    "ray": RayExecutor(),
}
"""Every executor, by name."""


def executor_for(job: Job) -> str:
    """The name of the executor for `job`: "ray" when the settings ask for it; else "pool" when
    the calls left (the cache probe's) are worth several processes, "inline" otherwise."""
    if job.settings.executor == "ray":
        return "ray"
    calls = job.probe.calls if job.probe is not None else job.attempts
    workers = pool_size(job)
    if not calls or workers <= 1 or len(job.attempts) < workers:
        return "inline"
    return "pool"


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
    """Run `pending` into `journal` on the executor `executor_for` names.

    `spent` is what the run directory has already spent: the cap counts it.
    """
    for model in {a.model.name: a.model for a in pending}.values():
        model.resolve_api_key()  # a missing key is the user's one-line error, not a dead worker
    job = Job(pending, settings, cache_dir, read_cache)
    owner = Owner(journal, Budget(settings.max_cost, spent), resumed, progress)
    # What exists now (modules, suites, the plan) lives to the end of the run: frozen, no
    # collection during the run walks it again — nor, after a fork, copies it page by page.
    gc.freeze()
    try:
        if settings.executor != "ray":  # Ray's workers read the cache where they run
            job = replace(job, probe=probe_cache(pending, cache_dir, read_cache))
        return EXECUTORS[executor_for(job)].run(job, owner)
    finally:
        gc.unfreeze()
