"""The inline executor: one Runner in this process, writing the journal and the cache itself."""

from __future__ import annotations

import asyncio

from margin.execute.cache import AnswerCache, JournalAndCache
from margin.execute.delivery import RunStats
from margin.execute.executors.base import Job, Owner
from margin.execute.runner import Runner


class InlineExecutor:
    """Every attempt in this process, on one event loop: the Runner is the journal's owner."""

    def run(self, job: Job, owner: Owner) -> RunStats:
        return asyncio.run(_run(job, owner))


async def _run(job: Job, owner: Owner) -> RunStats:
    cache = AnswerCache(job.cache_dir) if job.cache_dir is not None else None
    try:
        runner = Runner(
            job.settings,
            JournalAndCache(owner.journal, cache),
            cache,
            read_cache=job.read_cache,
            budget=owner.budget,
            progress=owner.progress,
        )
        if job.probe is not None:
            runner.prefetched(job.probe.keys, job.probe.answers, job.probe.known)
        return await runner.run(job.attempts, owner.resumed)
    finally:
        if cache is not None:
            cache.close()
