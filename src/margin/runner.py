"""Execute a plan: per-model concurrency and rate limits, retries, cache, budget, journal.

Every attempt ends as exactly one journal record: a judged answer, or an infra error after its
retries. Records are appended as attempts finish, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from margin.budget import Budget
from margin.cache import AnswerCache, CachedAnswer, cache_key
from margin.config import ModelSpec, RunSettings
from margin.errors import ConfigError, ProviderError, RateLimited
from margin.journal import AttemptRecord, JournalSink, MessageRecord
from margin.plan import Attempt, estimate_input_tokens
from margin.prices import TokenPrice, price_for
from margin.providers.gateway import Completion, close_clients, complete, prepare
from margin.validators import CheckContext, run_validators

IN_PROCESS_PROVIDERS = frozenset({"local"})
"""Providers that run the model inside margin's process, on its cores."""


@dataclass
class RunStats:
    """Running totals, for the progress display and the closing summary."""

    total: int
    resumed: int = 0
    done: int = 0
    passed: int = 0
    infra_errors: int = 0
    cache_hits: int = 0
    retries: int = 0
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    budget_stopped: bool = False
    not_run: int = 0
    failed_workers: int = 0
    halted: dict[str, str] = field(default_factory=dict)
    """Models stopped early because the provider refused every call, with the reason."""

    def add(self, record: AttemptRecord) -> None:
        """Count one finished attempt."""
        self.done += 1
        self.passed += bool(record.passed)
        self.infra_errors += record.infra_error
        self.cache_hits += record.cache_hit
        self.retries += record.retries
        self.spent_usd += record.cost_usd or 0.0
        self.saved_usd += record.cost_saved_usd

    @property
    def judged(self) -> int:
        """Attempts with a verdict (infra errors excluded)."""
        return self.done - self.infra_errors


class Progress(Protocol):
    """What the runner tells a progress display."""

    def start(self, stats: RunStats) -> None: ...
    def advance(self, stats: RunStats) -> None: ...
    def stop(self, stats: RunStats) -> None: ...


class NoProgress:
    """A silent progress display."""

    def start(self, stats: RunStats) -> None:
        return None

    def advance(self, stats: RunStats) -> None:
        return None

    def stop(self, stats: RunStats) -> None:
        return None


@dataclass
class _Lane:
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


@dataclass
class _Outcome:
    completion: Completion | None
    error: ProviderError | None
    retries: int
    cost: float | None = None


class _NotNow(Exception):
    """The call must not be made in this run; its attempt stays unrun for a later one."""


class _BudgetSpent(_NotNow):
    """The next call could pass the spending cap."""


class _LaneHalted(_NotNow):
    """The model's provider refused every call so far."""


REFUSALS_TO_HALT = 3
"""A model whose first calls are all refused (bad key, unknown model) stops after this many."""
HALTING_ERRORS = frozenset({"AuthenticationFailed", "ModelNotFound"})


class Runner:
    """Runs attempts into a journal; one Runner per run (or per worker process)."""

    def __init__(
        self,
        settings: RunSettings,
        journal: JournalSink,
        cache: AnswerCache | None = None,
        *,
        read_cache: bool = True,
        write_cache: bool = True,
        budget: Budget | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.cache = cache
        self.read_cache = read_cache
        self.write_cache = write_cache
        self.budget = budget if budget is not None else Budget(settings.max_cost)
        self.progress = progress or NoProgress()
        self._global = asyncio.Semaphore(settings.concurrency)
        self._backoff = wait_random_exponential(
            multiplier=settings.backoff_s, max=settings.backoff_max_s
        )
        # In-process models share the machine's cores: one call at a time across all of them,
        # so none is slowed by another and each latency is the model's own.
        self._in_process = asyncio.Semaphore(1)
        self.stats = RunStats(total=0)

    async def run(self, pending: Iterable[Attempt], resumed: int = 0) -> RunStats:
        """Run every pending attempt (plan order within a model) and return the totals."""
        lanes = self._lanes(pending)
        self.stats = RunStats(
            total=resumed + sum(len(lane.queue) for lane in lanes), resumed=resumed
        )
        self.progress.start(self.stats)
        try:
            for lane in lanes:  # load local weights before any call is timed
                if lane.queue and lane.model.provider in IN_PROCESS_PROVIDERS:
                    async with self._in_process:
                        await prepare(lane.model)
            async with asyncio.TaskGroup() as group:
                for lane in lanes:
                    workers = min(len(lane.queue), lane.model.concurrency * 2)
                    for _ in range(workers):
                        group.create_task(self._worker(lane))
        finally:
            await close_clients()
            self.stats.not_run = sum(len(lane.queue) for lane in lanes)
            self.stats.budget_stopped = self.budget.stopped
            self.stats.halted = {lane.model.name: lane.halted for lane in lanes if lane.halted}
            self.progress.stop(self.stats)
        return self.stats

    def _lanes(self, pending: Iterable[Attempt]) -> list[_Lane]:
        lanes: dict[str, _Lane] = {}
        for attempt in pending:
            lane = lanes.get(attempt.model.name)
            if lane is None:
                lane = lanes[attempt.model.name] = self._lane(attempt.model)
            lane.queue.append(attempt)
        return list(lanes.values())

    def _lane(self, model: ModelSpec) -> _Lane:
        price = price_for(model)
        if self.budget.cap is not None and not price.known:
            raise ConfigError(
                f"--max-cost needs a price for model {model.name!r} ({model.model}): "
                "add `price: {input_per_mtok: …, output_per_mtok: …}` to its config"
            )
        limiter = AsyncLimiter(1, 60.0 / model.rpm) if model.rpm else None
        return _Lane(
            model, model.resolve_api_key(), price, asyncio.Semaphore(model.concurrency), limiter
        )

    async def _worker(self, lane: _Lane) -> None:
        while lane.queue and not self.budget.stopped and lane.halted is None:
            attempt = lane.queue.popleft()
            try:
                record, cache_key = await self._attempt(lane, attempt)
            except _NotNow:  # leave it for a resumed run (a higher cap, a fixed key)
                lane.queue.appendleft(attempt)
                return
            except BaseException:  # a bug or an interrupt: the attempt is counted as not run
                lane.queue.appendleft(attempt)
                raise
            self._watch_refusals(lane, record)
            self.journal.append(record, cache_key)
            self.stats.add(record)
            self.progress.advance(self.stats)

    def _watch_refusals(self, lane: _Lane, record: AttemptRecord) -> None:
        """Halt a model whose calls are all refused (a bad key): a line, not thousands of rows."""
        if record.error is None:
            lane.succeeded += 1
        elif record.error in HALTING_ERRORS:
            lane.refused += 1
            if lane.succeeded == 0 and lane.refused >= REFUSALS_TO_HALT and lane.halted is None:
                lane.halted = f"{record.error}: {record.error_message}"

    async def _attempt(self, lane: _Lane, attempt: Attempt) -> tuple[AttemptRecord, str | None]:
        started = datetime.now(UTC)
        key = cache_key(lane.model, attempt) if self.cache is not None else None
        if key is not None and self.read_cache:
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                return self._judged(attempt, started, hit, cache_hit=True), None
        outcome = await self._call(lane, attempt)
        if outcome.completion is None:
            return self._infra_error(lane, attempt, started, outcome), None
        done = outcome.completion
        answer = CachedAnswer(
            done.text,
            done.input_tokens,
            done.output_tokens,
            done.latency_s,
            outcome.cost,
            done.finish_reason,
        )
        record = self._judged(
            attempt, started, answer, retries=outcome.retries, dropped=done.dropped_params
        )
        return record, key if self.write_cache else None

    def _worst_case(self, lane: _Lane, attempt: Attempt) -> float:
        """The most a call can cost: its prompt and a full `max_tokens` answer."""
        if self.budget.cap is None:
            return 0.0
        return lane.price.cost(estimate_input_tokens(attempt.messages), attempt.max_tokens)

    async def _call(self, lane: _Lane, attempt: Attempt) -> _Outcome:
        retries = 0
        messages = [{"role": m.role, "content": m.content} for m in attempt.messages]
        worst = self._worst_case(lane, attempt)
        try:
            async for trial in AsyncRetrying(
                stop=stop_after_attempt(self.settings.retries + 1),
                wait=self._wait,
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with trial:
                    retries = trial.retry_state.attempt_number - 1
                    async with self._slot(lane):
                        if lane.halted is not None:
                            raise _LaneHalted
                        # Reserved only now, with every slot taken: what finished while this
                        # call waited is already counted, so the check is against today's spend.
                        if not self.budget.reserve(worst):
                            raise _BudgetSpent
                        billed = 0.0
                        try:
                            completion = await complete(
                                lane.model,
                                messages,
                                seed=attempt.seed,
                                max_tokens=attempt.max_tokens,
                                api_key=lane.api_key,
                            )
                            cost = self._cost(lane, completion)
                            billed = cost or 0.0
                        finally:
                            self.budget.settle(worst, billed)
                    return _Outcome(completion, None, retries, cost)
        except ProviderError as exc:
            return _Outcome(None, exc, retries)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    @staticmethod
    def _cost(lane: _Lane, done: Completion) -> float | None:
        if not lane.price.known:
            return None
        return lane.price.cost(done.input_tokens, done.output_tokens)

    @asynccontextmanager
    async def _slot(self, lane: _Lane) -> AsyncIterator[None]:
        """The model's slot and rate token first, then the global slot: a call waiting on its
        own model's limits never holds global capacity another model could use."""
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(lane.slots)
            if lane.limiter is not None:
                await stack.enter_async_context(lane.limiter)
            if lane.model.provider in IN_PROCESS_PROVIDERS:
                await stack.enter_async_context(self._in_process)
            await stack.enter_async_context(self._global)
            yield

    def _wait(self, state: RetryCallState) -> float:
        """Honour Retry-After (with a little jitter), else exponential backoff with jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after * (1 + random.random() * 0.1)
        return float(self._backoff(state))

    def _judged(
        self,
        attempt: Attempt,
        started: datetime,
        answer: CachedAnswer,
        *,
        cache_hit: bool = False,
        retries: int = 0,
        dropped: tuple[str, ...] = (),
    ) -> AttemptRecord:
        ctx = CheckContext(attempt.task.case_vars(attempt.case), attempt.case.expect)
        verdicts = run_validators(attempt.task.checks(), answer.text, ctx)
        passed = sum(v.passed for v in verdicts)
        return _record(
            attempt,
            started,
            output=answer.text,
            verdicts=verdicts,
            passed=passed == len(verdicts),
            partial=passed / len(verdicts) if verdicts else 1.0,
            latency_s=answer.latency_s,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=0.0 if cache_hit else answer.cost_usd,
            cost_saved_usd=(answer.cost_usd or 0.0) if cache_hit else 0.0,
            cache_hit=cache_hit,
            retries=retries,
            finish_reason=answer.finish_reason,
            truncated=answer.finish_reason == "length",
            dropped_params=list(dropped),
        )

    def _infra_error(
        self, lane: _Lane, attempt: Attempt, started: datetime, outcome: _Outcome
    ) -> AttemptRecord:
        assert outcome.error is not None
        return _record(
            attempt,
            started,
            output=None,
            verdicts=[],
            passed=None,
            partial=None,
            latency_s=None,
            cost_usd=0.0,
            error=outcome.error.error_class,
            error_message=scrub(str(outcome.error), lane.api_key),
            retries=outcome.retries,
        )


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.retryable


_MASKED = re.compile(r"[A-Za-z0-9_\-]{2,}\*{3,}[A-Za-z0-9_\-]*|\*{3,}[A-Za-z0-9_\-]{2,}")
"""A key as providers echo it, masked in the middle: `sk-abc***********xyz1`."""


def scrub(text: str, secret: str | None) -> str:
    """`text` with the secret, pieces of it, and any masked key a provider echoed replaced by
    `***`: a masked key still gives away its first and last characters."""
    if secret:
        text = text.replace(secret, "***")
        if len(secret) >= 12:
            for piece in (secret[:8], secret[-6:], secret[-4:]):
                text = text.replace(piece, "***")
    return _MASKED.sub("***", text)


def _record(attempt: Attempt, started: datetime, **fields: object) -> AttemptRecord:
    key = attempt.key
    return AttemptRecord.model_validate(
        {
            "key": str(key),
            "model": key.model,
            "litellm_model": attempt.model.model,
            "suite": key.suite,
            "task": key.task,
            "case": key.case,
            "variant": key.variant,
            "paraphrase": attempt.variant.paraphrase,
            "noise_kind": attempt.variant.kind,
            "noise_level": attempt.variant.level,
            "variant_version": attempt.variant.version,
            "noise_seed": attempt.noise_seed,
            "repeat": key.repeat,
            "seed": attempt.seed,
            "temperature": attempt.model.sampling.temperature,
            "messages": [MessageRecord(role=m.role, content=m.content) for m in attempt.messages],
            "max_tokens": attempt.max_tokens,
            "policy": key.policy or None,
            "step": key.step if key.policy else None,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            **fields,
        }
    )
