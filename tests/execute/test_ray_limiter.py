"""The Ray executor's per-model limiter on its own (no Ray): slots per worker, a dead worker's."""

from __future__ import annotations

import asyncio

from margin.execute.executors.ray import ModelLimiter

FOREVER_S = 3600.0
"""A call timeout no test reaches: a slot waiting on it does not come back during the test."""
HANG_GUARD_S = 60.0


async def settled() -> None:
    """Let every task that can run, run (nothing here waits on time)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_dead_workers_slots_stay_taken_while_its_calls_may_still_run() -> None:
    async def scenario() -> None:
        limiter = ModelLimiter(2, None, call_s=FOREVER_S)
        await limiter.acquire(0)
        await limiter.acquire(0)
        await limiter.forget(0)  # its two calls may still be at the provider
        other = asyncio.create_task(limiter.acquire(1))
        await settled()
        assert not other.done()
        other.cancel()

    asyncio.run(scenario())


def test_a_dead_workers_slots_come_back_when_its_calls_have_ended() -> None:
    async def scenario() -> None:
        limiter = ModelLimiter(2, None, call_s=0.0)
        await limiter.acquire(0)
        await limiter.acquire(0)
        await limiter.forget(0)
        both = asyncio.gather(limiter.acquire(1), limiter.acquire(1))
        await asyncio.wait_for(both, HANG_GUARD_S)

    asyncio.run(scenario())


def test_a_dead_workers_queued_calls_give_their_slot_back() -> None:
    async def scenario() -> None:
        limiter = ModelLimiter(1, None, call_s=0.0)
        await limiter.acquire(0)
        queued = asyncio.create_task(limiter.acquire(0))  # asked, not granted, when it died
        await settled()
        await limiter.forget(0)
        await asyncio.wait_for(limiter.acquire(1), HANG_GUARD_S)
        assert queued.done() and limiter.held == {1: 1}

    asyncio.run(scenario())


def test_a_release_arriving_after_the_death_gives_nothing_back_twice() -> None:
    async def scenario() -> None:
        limiter = ModelLimiter(1, None, call_s=FOREVER_S)
        await limiter.acquire(0)
        await limiter.forget(0)
        await limiter.release(0)  # its task failed but the actor lived: its release comes late
        other = asyncio.create_task(limiter.acquire(1))
        await settled()
        assert not other.done()
        other.cancel()

    asyncio.run(scenario())


def test_live_workers_share_the_slots() -> None:
    async def scenario() -> None:
        limiter = ModelLimiter(1, None, call_s=FOREVER_S)
        await limiter.acquire(0)
        waiting = asyncio.create_task(limiter.acquire(1))
        await settled()
        assert not waiting.done()
        await limiter.release(0)
        await asyncio.wait_for(waiting, HANG_GUARD_S)
        assert limiter.held == {0: 0, 1: 1}

    asyncio.run(scenario())
