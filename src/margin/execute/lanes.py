"""A model's lane through the runner (its limits, queue and refusals), and the room that
in-process models share on the machine's cores."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from margin.config import ModelSpec
from margin.journal.records import AttemptRecord
from margin.plan import Attempt
from margin.providers.prices import TokenPrice

IN_PROCESS_PROVIDERS = frozenset({"local"})
"""Providers that run the model inside margin's process, on its cores."""

REFUSALS_TO_HALT = 3
"""A model whose first calls are all refused (bad key, unknown model) stops after this many."""
HALTING_ERRORS = frozenset({"AuthenticationFailed", "ModelNotFound"})


@dataclass
class Lane:
    """One model's limits and what every call to it needs."""

    model: ModelSpec
    api_key: str | None
    price: TokenPrice
    slots: asyncio.Semaphore
    limiter: AsyncLimiter | None
    queue: deque[Attempt] = field(default_factory=deque)
    succeeded: int = 0
    refused: int = 0
    halted: str | None = None
    """Why the lane stopped early (every call refused by the provider), or None."""

    def watch_refusals(self, record: AttemptRecord) -> None:
        """Halt a model whose calls are all refused (a bad key): a line, not thousands of rows."""
        if record.error is None:
            self.succeeded += 1
        elif record.error in HALTING_ERRORS:
            self.refused += 1
            if self.succeeded == 0 and self.refused >= REFUSALS_TO_HALT and self.halted is None:
                self.halted = f"{record.error}: {record.error_message}"


def prefix_order(attempts: Iterable[Attempt]) -> list[Attempt]:
    """`attempts` with each model's calls of one task grouped variant by variant (the plan's
    order is case by case): consecutive prompts then share the longest prefix, so an
    in-process model's prompt cache reuses it — the clean prompts share every word before the
    case's own input, while a noisy prompt differs from its first typo on. Stable otherwise."""
    listed = list(attempts)
    order = {id(a): i for i, a in enumerate(listed)}
    first: dict[tuple[str, str, str], int] = {}
    for i, a in enumerate(listed):
        first.setdefault((a.key.model, a.key.suite, a.key.task), i)

    def place(a: Attempt) -> tuple[int, str, int]:
        return first[(a.key.model, a.key.suite, a.key.task)], a.key.variant, order[id(a)]

    return sorted(listed, key=place)


class CoreRoom:
    """The machine's cores, for in-process models: one model at a time, and one call of it at a
    time — or up to its `parallel` calls decoded together — so no call is slowed by another
    model's and each latency is the model's own (or, batched, says so)."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._holder: str | None = None
        self._inside = 0

    @asynccontextmanager
    async def slot(self, model: ModelSpec) -> AsyncIterator[None]:
        room = model.parallel or 1
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._inside == 0 or (self._holder == model.name and self._inside < room)
            )
            self._holder, self._inside = model.name, self._inside + 1
        try:
            yield
        finally:
            async with self._changed:
                self._inside -= 1
                if self._inside == 0:
                    self._holder = None
                self._changed.notify_all()
