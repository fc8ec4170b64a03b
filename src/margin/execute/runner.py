"""Execute a plan: per-model concurrency and rate limits, retries, cache, budget, journal.

Every attempt ends as exactly one journal record: a judged answer, or an infra error after its
retries. Records are appended as attempts finish, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from margin.config import ModelSpec, RunSettings
from margin.errors import ConfigError, ProviderError, RateLimited
from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache, CachedAnswer, cache_key, judge_cache_key
from margin.execute.delivery import Delivery, NoProgress, Progress, RunStats
from margin.execute.judging import answer_verdicts
from margin.execute.lanes import IN_PROCESS_PROVIDERS, CoreRoom, Lane
from margin.execute.outcome import Outcome, error_record, judge_verdict, judged_record
from margin.execute.scrub import scrub_answer
from margin.journal.records import AttemptRecord, JournalSink
from margin.plan import Attempt, estimate_input_tokens
from margin.providers.gateway import Completion, close_clients, complete, longest_call_s, prepare
from margin.providers.prices import price_for
from margin.validators import CheckContext, Verdict
from margin.validators.judge import JudgeValidator


class _NotNow(Exception):
    """The call must not be made in this run; its attempt stays unrun for a later one."""


class _BudgetSpent(_NotNow):
    """The next call could pass the spending cap."""


class _LaneHalted(_NotNow):
    """The model's provider refused every call so far."""


SETTLE_GRACE_S = 60.0
"""A call holding its worst case ends within its model's timeout (and this grace): near the cap,
a wait that long with no call settling anywhere means the holder is gone (a killed worker)."""
WAIT_SLICE_S = 1.0
"""A wait for a settle wakes at once when one comes, else after this long to look again."""


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
        shared_limits: Mapping[str, Callable[[], AbstractAsyncContextManager[None]]] | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.cache = cache
        self.read_cache = read_cache
        self.write_cache = write_cache
        self.budget = budget if budget is not None else Budget(settings.max_cost)
        self.progress = progress or NoProgress()
        self.shared_limits = dict(shared_limits or {})
        """Per model: a slot held across worker machines, taken after the model's own limits."""
        self._global = asyncio.Semaphore(settings.concurrency)
        self._budget_line = asyncio.Lock()
        """Near the cap, one call at a time waits on the shared account (in one thread)."""
        self._longest_call_s = 0.0
        self._backoff = wait_random_exponential(
            multiplier=settings.backoff_s, max=settings.backoff_max_s
        )
        # In-process models share the machine's cores: one call at a time across all of them
        # (or a model's `parallel` calls batched together), so none is slowed by another.
        self._in_process = CoreRoom()
        self._judges: dict[str, Lane] = {}
        self.stats = RunStats(total=0)
        self._delivery = Delivery(journal, self.stats, self.progress)
        """Each finished record: journaled (or sent to the journal's owner), counted, shown."""
        self._keys: dict[str, str] = {}
        self._answers: dict[str, CachedAnswer] = {}
        self._known: set[str] = set()
        self._secrets: tuple[str, ...] = ()
        """Every api key a call of this runner sends (models' and judges'), longest first."""

    def prefetched(
        self, keys: dict[str, str], answers: dict[str, CachedAnswer], known: set[str]
    ) -> None:
        """The cache was probed for these attempts already: `keys` gives each one's cache key
        (by attempt key), `known` the keys the cache holds, `answers` those answers read ahead
        (all of them, or none on a run too big to hold them). A key known absent is not looked
        up again."""
        self._keys, self._answers, self._known = dict(keys), dict(answers), set(known)

    async def run(self, pending: Iterable[Attempt], resumed: int = 0) -> RunStats:
        """Run every pending attempt (plan order within a model) and return the totals."""
        pending = list(pending)
        lanes = self._lanes(pending)
        self._judge_lanes(pending)  # judges' lanes (and a missing price) before any call
        self.stats = RunStats(
            total=resumed + sum(len(lane.queue) for lane in lanes), resumed=resumed
        )
        self._delivery = Delivery(self.journal, self.stats, self.progress)
        self.progress.start(self.stats)
        try:
            await self._prepare(lanes)  # load local weights before any call is timed
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

    async def judge_only(
        self, check: JudgeValidator, items: list[tuple[Attempt, str]]
    ) -> list[Verdict]:
        """The judge's verdict on each (attempt, output), without calling the attempts' model:
        what `margin judge-check` measures against human labels."""
        self._judge_lanes(attempt for attempt, _ in items)
        try:
            await self._prepare([])

            async def one(attempt: Attempt, output: str) -> Verdict:
                ctx = CheckContext(attempt.task.case_vars(attempt.case), attempt.case.expect)
                return await self._judge(attempt, check, output, ctx)

            return list(await asyncio.gather(*(one(a, o) for a, o in items)))
        finally:
            await close_clients()

    def _judge_lanes(self, attempts: Iterable[Attempt]) -> None:
        """A lane for each judge model the attempts' validators call."""
        for attempt in attempts:
            for judge in attempt.judges:
                if judge.name not in self._judges:
                    self._judges[judge.name] = self._lane(judge)

    async def _prepare(self, lanes: list[Lane]) -> None:
        """Load the weights of the in-process models among `lanes` and every judge's."""
        for lane in [*lanes, *self._judges.values()]:
            if lane.model.provider in IN_PROCESS_PROVIDERS:
                async with self._in_process.slot(lane.model):
                    await prepare(lane.model)

    def _lanes(self, pending: Iterable[Attempt]) -> list[Lane]:
        lanes: dict[str, Lane] = {}
        for attempt in pending:
            lane = lanes.get(attempt.model.name)
            if lane is None:
                lane = lanes[attempt.model.name] = self._lane(attempt.model)
            lane.queue.append(attempt)
        return list(lanes.values())

    def _lane(self, model: ModelSpec) -> Lane:
        price = price_for(model)
        if self.budget.cap is not None and not price.known:
            raise ConfigError(
                f"--max-cost needs a price for model {model.name!r} ({model.model}): "
                "add `price: {input_per_mtok: …, output_per_mtok: …}` to its config"
            )
        limiter = AsyncLimiter(1, 60.0 / model.rpm) if model.rpm else None
        self._longest_call_s = max(self._longest_call_s, model.timeout)
        api_key = model.resolve_api_key()
        if api_key:
            self._secrets = tuple(sorted({*self._secrets, api_key}, key=len, reverse=True))
        return Lane(model, api_key, price, asyncio.Semaphore(model.concurrency), limiter)

    async def _worker(self, lane: Lane) -> None:
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
            lane.watch_refusals(record)
            self._delivery.deliver(record, cache_key)

    async def _attempt(self, lane: Lane, attempt: Attempt) -> tuple[AttemptRecord, str | None]:
        started = datetime.now(UTC)
        probed = self._keys.pop(str(attempt.key), None)
        key = probed or (cache_key(lane.model, attempt) if self.cache is not None else None)
        if key is not None and self.read_cache:
            if probed is not None and key not in self._known:
                hit = None  # the probe found no answer: no second look
            elif probed is not None and key in self._answers:
                hit = self._answers[key]
            else:
                hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                verdicts, skipped = await self._verdicts(attempt, hit.text)
                record = judged_record(
                    attempt, started, hit, verdicts, cache_hit=True, judge_skipped=skipped
                )
                return record, None
        messages = [{"role": m.role, "content": m.content} for m in attempt.messages]
        worst = self._worst_case(lane, attempt)
        outcome = await self._call(lane, messages, attempt.seed, attempt.max_tokens, worst)
        if outcome.completion is None:
            return error_record(attempt, started, outcome, lane.api_key), None
        done = outcome.completion
        answer = self._received(done, outcome.cost)
        verdicts, skipped = await self._verdicts(attempt, answer.text)
        record = judged_record(
            attempt,
            started,
            answer,
            verdicts,
            retries=outcome.retries,
            dropped=done.dropped_params,
            judge_skipped=skipped,
        )
        return record, key if self.write_cache else None

    async def _verdicts(self, attempt: Attempt, output: str) -> tuple[list[Verdict], bool]:
        """Every validator's verdict, and whether the judges were skipped (`answer_verdicts`)."""
        return await answer_verdicts(attempt, output, self.settings.judge.model, self._judge)

    async def _judge(
        self, attempt: Attempt, check: JudgeValidator, output: str, ctx: CheckContext
    ) -> Verdict:
        """Ask the judge (`repeats` times) through the gateway: cached, budgeted, retried."""
        name = check.model or self.settings.judge.model
        lane = self._judges[str(name)]
        prompt = next((m.content for m in reversed(attempt.messages) if m.role == "user"), "")
        texts = check.messages(output, prompt, ctx.vars, ctx.expect)
        worst = (
            lane.price.cost(
                max(len(t) for t in texts) // 4 + 4, check.max_tokens, longest_call_s(lane.model)
            )
            if self.budget.cap
            else 0.0
        )
        answers: list[str | None] = []
        errors: list[str] = []
        calls: list[CachedAnswer] = []  # the answers paid for now
        hits: list[CachedAnswer] = []  # the answers from the cache
        for repeat in range(check.repeats or self.settings.judge.repeats):
            for order, text in enumerate(texts):  # a pairwise rubric: both orders each time
                index = repeat * len(texts) + order
                messages = [{"role": "user", "content": text}]
                key = judge_cache_key(lane.model, messages, check.max_tokens, index)
                hit = self.cache.get(key) if self.cache is not None and self.read_cache else None
                if hit is not None:
                    hits.append(hit)
                    answers.append(hit.text)
                    continue
                seed = (attempt.seed * 7919 + index + 1) & 0x7FFFFFFF
                outcome = await self._call(lane, messages, seed, check.max_tokens, worst)
                if outcome.completion is None:
                    assert outcome.error is not None
                    answers.append(None)
                    errors.append(outcome.error.error_class)
                    continue
                answer = self._received(outcome.completion, outcome.cost)
                calls.append(answer)
                answers.append(answer.text)
                if self.cache is not None and self.write_cache and check.is_usable(answer.text):
                    self.cache.put(key, answer)  # only a usable answer: garbage is asked again
        return judge_verdict(check, lane.model.name, texts, answers, errors, calls, hits)

    def _received(self, done: Completion, cost: float | None) -> CachedAnswer:
        """A call's answer as margin keeps it, every api key it echoes scrubbed: validators,
        judges, the journal, the cache and the report only ever see this text."""
        text = scrub_answer(done.text, self._secrets)
        return CachedAnswer(
            text, done.input_tokens, done.output_tokens, done.latency_s, cost, done.finish_reason
        )

    def _worst_case(self, lane: Lane, attempt: Attempt) -> float:
        """The most a call can cost: its prompt and a full `max_tokens` answer."""
        if self.budget.cap is None:
            return 0.0
        tokens = estimate_input_tokens(attempt.messages)
        return lane.price.cost(tokens, attempt.max_tokens, longest_call_s(lane.model))

    async def _call(
        self,
        lane: Lane,
        messages: list[dict[str, str]],
        seed: int,
        max_tokens: int,
        worst: float,
    ) -> Outcome:
        retries = 0
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
                        await self._reserve(worst)
                        billed = 0.0
                        try:
                            completion = await complete(
                                lane.model,
                                messages,
                                seed=seed,
                                max_tokens=max_tokens,
                                api_key=lane.api_key,
                            )
                            cost = self._cost(lane, completion)
                            billed = cost or 0.0
                        finally:
                            self.budget.settle(worst, billed)
                    return Outcome(completion, None, retries, cost)
        except ProviderError as exc:
            return Outcome(None, exc, retries)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    async def _reserve(self, amount: float) -> None:
        """Hold `amount` against the cap. Near it, wait for a call in flight (in any process)
        to settle and ask again; _BudgetSpent when it can never fit: nothing is in flight and
        it still does not."""
        unsettled = 0.0
        while True:
            seen = self.budget.settles
            if self.budget.reserve(amount):
                return
            if self.budget.stopped:
                raise _BudgetSpent
            async with self._budget_line:  # the others wait here, holding no thread
                settled = await asyncio.to_thread(self.budget.wait, seen, WAIT_SLICE_S)
            unsettled = 0.0 if settled else unsettled + WAIT_SLICE_S
            if unsettled > self._longest_call_s + SETTLE_GRACE_S:
                self.budget.stop()
                raise _BudgetSpent

    @staticmethod
    def _cost(lane: Lane, done: Completion) -> float | None:
        if not lane.price.known:
            return None
        return lane.price.cost(done.input_tokens, done.output_tokens, done.latency_s)

    @asynccontextmanager
    async def _slot(self, lane: Lane) -> AsyncIterator[None]:
        """The model's slot and rate token first, then the global slot: a call waiting on its
        own model's limits never holds global capacity another model could use."""
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(lane.slots)
            if lane.limiter is not None:
                await stack.enter_async_context(lane.limiter)
            shared = self.shared_limits.get(lane.model.name)
            if shared is not None:  # a limit held across machines (the Ray executor)
                await stack.enter_async_context(shared())
            if lane.model.provider in IN_PROCESS_PROVIDERS:
                await stack.enter_async_context(self._in_process.slot(lane.model))
            await stack.enter_async_context(self._global)
            yield

    def _wait(self, state: RetryCallState) -> float:
        """Honour Retry-After (with a little jitter), else exponential backoff with jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after * (1 + random.random() * 0.1)
        return float(self._backoff(state))


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.retryable
