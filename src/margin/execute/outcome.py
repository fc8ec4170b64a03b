"""An attempt's journal record (its answer with the validators' verdicts, or its infra error),
and a judge validator's verdict from the judge's answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from margin.errors import ProviderError
from margin.execute.cache import CachedAnswer
from margin.execute.scrub import scrub
from margin.journal.records import AttemptRecord, MessageRecord
from margin.plan import Attempt
from margin.providers.gateway import Completion
from margin.validators import Verdict
from margin.validators.base import CheckContext, JudgeTrace
from margin.validators.guards import guard_outcome
from margin.validators.judge import JudgeValidator, combine, combine_pairs


@dataclass
class Outcome:
    """How a call ended: its completion, or the provider error its retries ended in."""

    completion: Completion | None
    error: ProviderError | None
    retries: int
    cost: float | None = None


def judged_record(
    attempt: Attempt,
    started: datetime,
    answer: CachedAnswer,
    verdicts: list[Verdict],
    *,
    cache_hit: bool = False,
    retries: int = 0,
    dropped: tuple[str, ...] = (),
    judge_skipped: bool = False,
) -> AttemptRecord:
    """The record of an answered attempt: passed when every verdict passed, unscored when a
    validator could not decide, with what the task's production guards said of it.

    With `judge_skipped` (`judges_needed` said no) the judges' verdicts are absent: partial
    credit is the share of the validators that were asked, and the judge's statistics count
    only the attempts it judged."""
    passed = sum(v.passed for v in verdicts)
    unscored = [v for v in verdicts if v.unscored]
    ctx = CheckContext(attempt.task.case_vars(attempt.case), attempt.case.expect)
    guards = guard_outcome(attempt.task.guards_for(attempt.case), verdicts, answer.text, ctx)
    judges = [v.judge for v in verdicts if v.judge is not None]
    judge_costs = [j.cost_usd for j in judges]
    return _record(
        attempt,
        started,
        output=answer.text,
        verdicts=verdicts,
        passed=None if unscored else passed == len(verdicts),
        partial=None if unscored else (passed / len(verdicts) if verdicts else 1.0),
        guards_passed=None if unscored else guards.passed,
        guards_failed=list(guards.failed),
        error="Unscored" if unscored else None,
        error_message=f"{unscored[0].validator}: {unscored[0].reason}" if unscored else None,
        judge_cost_usd=None if None in judge_costs else sum(c or 0.0 for c in judge_costs),
        latency_s=answer.latency_s,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        cost_usd=0.0 if cache_hit else answer.cost_usd,
        cost_saved_usd=(answer.cost_usd or 0.0) if cache_hit else 0.0,
        cache_hit=cache_hit,
        retries=retries,
        finish_reason=answer.finish_reason,
        truncated=answer.finish_reason == "length",
        over_max_tokens=answer.output_tokens > attempt.max_tokens,
        dropped_params=list(dropped),
        judge_skipped=judge_skipped,
    )


def error_record(
    attempt: Attempt, started: datetime, outcome: Outcome, api_key: str | None
) -> AttemptRecord:
    """The record of an attempt whose call ended in an infra error, the key scrubbed from it."""
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
        error_message=scrub(str(outcome.error), api_key),
        retries=outcome.retries,
    )


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
            "batched": attempt.model.batched,
            "policy": key.policy or None,
            "step": key.step if key.policy else None,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            **fields,
        }
    )


def judge_verdict(
    check: JudgeValidator,
    model: str,
    texts: list[str],
    answers: list[str | None],
    errors: list[str],
    calls: list[CachedAnswer],
    hits: list[CachedAnswer],
) -> Verdict:
    """A judge validator's verdict from its answers (None for a call that failed), with the trace
    of its `texts` (the prompt, and the swapped one of a pairwise rubric), the answers paid for
    now (`calls`) and those replayed from the cache (`hits`)."""
    both = [*calls, *hits]
    costs = [a.cost_usd for a in calls]
    trace = JudgeTrace(
        model=model,
        prompt=texts[0],
        swapped_prompt=texts[1] if len(texts) > 1 else None,
        answers=answers,
        errors=errors,
        cost_usd=None if None in costs else sum(c or 0.0 for c in costs),
        cost_saved_usd=sum(a.cost_usd or 0.0 for a in hits),
        latency_s=sum(a.latency_s for a in both),
        input_tokens=sum(a.input_tokens for a in both),
        output_tokens=sum(a.output_tokens for a in both),
        cache_hits=len(hits),
    )
    if check.reference is not None:
        return combine_pairs(check.name, answers, trace, check.pass_on)
    return combine(check.name, answers, trace)
