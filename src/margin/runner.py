"""Execute a plan: per-model concurrency and rate limits, retries, cache, budget, journal.

Every attempt ends as exactly one journal record: a judged answer, or an infra error after its
retries. Records are appended as attempts finish, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from margin.cache import AnswerCache, CachedAnswer, cache_key
from margin.config import ModelSpec, RunSettings
from margin.errors import ConfigError, ProviderError, RateLimited
from margin.journal import AttemptRecord, JournalSink, MessageRecord
from margin.plan import Attempt, estimate_input_tokens, estimate_output_tokens
from margin.prices import TokenPrice, price_for
from margin.providers.gateway import Completion, close_clients, complete
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


@dataclass
class _Outcome:
    completion: Completion | None
    error: ProviderError | None
    retries: int


class Runner:
    """Runs attempts into a journal; one Runner per run."""

    def __init__(
        self,
        settings: RunSettings,
        journal: JournalSink,
        cache: AnswerCache | None = None,
        *,
        read_cache: bool = True,
        max_cost: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.cache = cache
        self.read_cache = read_cache
        self.max_cost = max_cost if max_cost is not None else settings.max_cost
        self.progress = progress or NoProgress()
        self._global = asyncio.Semaphore(settings.concurrency)
        self._backoff = wait_random_exponential(
            multiplier=settings.backoff_s, max=settings.backoff_max_s
        )
        # In-process models share the machine's cores: one call at a time across all of them,
        # so none is slowed by another and each latency is the model's own.
        self._in_process = asyncio.Semaphore(1)
        self._reserved = 0.0
        self._stop = False
        self.stats = RunStats(total=0)

    async def run(self, pending: Iterable[Attempt], resumed: int = 0) -> RunStats:
        """Run every pending attempt (plan order within a model) and return the totals."""
        lanes = self._lanes(pending)
        self.stats = RunStats(
            total=resumed + sum(len(lane.queue) for lane in lanes), resumed=resumed
        )
        self.progress.start(self.stats)
        try:
            async with asyncio.TaskGroup() as group:
                for lane in lanes:
                    workers = min(len(lane.queue), lane.model.concurrency * 2)
                    for _ in range(workers):
                        group.create_task(self._worker(lane))
        finally:
            await close_clients()
            self.stats.not_run = sum(len(lane.queue) for lane in lanes)
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
        if self.max_cost is not None and not price.known:
            raise ConfigError(
                f"--max-cost needs a price for model {model.name!r} ({model.model}): "
                "add `price: {input_per_mtok: …, output_per_mtok: …}` to its config"
            )
        limiter = AsyncLimiter(1, 60.0 / model.rpm) if model.rpm else None
        return _Lane(
            model, model.resolve_api_key(), price, asyncio.Semaphore(model.concurrency), limiter
        )

    async def _worker(self, lane: _Lane) -> None:
        while lane.queue and not self._stop:
            attempt = lane.queue.popleft()
            record = await self._attempt(lane, attempt)
            if record is None:  # the budget is spent: leave it for a resumed run
                lane.queue.appendleft(attempt)
                return
            self.journal.append(record)
            self.stats.add(record)
            self.progress.advance(self.stats)

    async def _attempt(self, lane: _Lane, attempt: Attempt) -> AttemptRecord | None:
        started = datetime.now(UTC)
        key = cache_key(lane.model, attempt) if self.cache is not None else ""
        if self.cache is not None and self.read_cache:
            hit = self.cache.get(key)
            if hit is not None:
                return self._judged(attempt, started, hit, cache_hit=True)
        estimate = self._estimate(lane, attempt)
        if not self._reserve(estimate):
            return None
        try:
            outcome = await self._call(lane, attempt)
        finally:
            self._reserved -= estimate
        if outcome.completion is None:
            assert outcome.error is not None
            return self._infra_error(lane, attempt, started, outcome)
        done = outcome.completion
        cost = lane.price.cost(done.input_tokens, done.output_tokens) if lane.price.known else None
        answer = CachedAnswer(
            done.text, done.input_tokens, done.output_tokens, done.latency_s, cost
        )
        if self.cache is not None:
            self.cache.put(key, answer)
        return self._judged(attempt, started, answer, retries=outcome.retries)

    def _estimate(self, lane: _Lane, attempt: Attempt) -> float:
        if self.max_cost is None:
            return 0.0
        tokens_in = estimate_input_tokens(attempt.messages)
        return lane.price.cost(tokens_in, estimate_output_tokens(attempt.task, attempt.max_tokens))

    def _reserve(self, estimate: float) -> bool:
        """Hold `estimate` dollars for a call, or stop scheduling if it would pass the cap."""
        if self._stop:
            return False
        over = self.stats.spent_usd + self._reserved + estimate > (self.max_cost or 0.0)
        if self.max_cost is not None and over:
            self._stop = True
            self.stats.budget_stopped = True
            return False
        self._reserved += estimate
        return True

    async def _call(self, lane: _Lane, attempt: Attempt) -> _Outcome:
        retries = 0
        messages = [{"role": m.role, "content": m.content} for m in attempt.messages]
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
                        completion = await complete(
                            lane.model,
                            messages,
                            seed=attempt.seed,
                            max_tokens=attempt.max_tokens,
                            api_key=lane.api_key,
                        )
                    return _Outcome(completion, None, retries)
        except ProviderError as exc:
            return _Outcome(None, exc, retries)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    @asynccontextmanager
    async def _slot(self, lane: _Lane) -> AsyncIterator[None]:
        async with self._global, lane.slots:
            if lane.model.provider in IN_PROCESS_PROVIDERS:
                async with self._in_process:
                    yield
            elif lane.limiter is not None:
                async with lane.limiter:
                    yield
            else:
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


def scrub(text: str, secret: str | None) -> str:
    """`text` with the secret (and any long piece of it) replaced by ***."""
    if not secret:
        return text
    text = text.replace(secret, "***")
    if len(secret) >= 12:  # providers echo masked keys: sk-abc***xyz
        text = text.replace(secret[:8], "***").replace(secret[-6:], "***")
    return text


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
            "started_at": started,
            "finished_at": datetime.now(UTC),
            **fields,
        }
    )
