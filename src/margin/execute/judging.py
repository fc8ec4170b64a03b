"""An answer's verdicts: the deterministic validators', then the judges' — asked only where
their verdict could change the attempt's record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from margin.plan import Attempt
from margin.providers.local import CALL_ROLE
from margin.validators import CheckContext, Verdict, run_validators
from margin.validators.base import Validator
from margin.validators.guards import Guard, guard_outcome, validator_labels
from margin.validators.judge import JudgeValidator

AskJudge = Callable[[Attempt, JudgeValidator, str, CheckContext], Awaitable[Verdict]]


async def answer_verdicts(
    attempt: Attempt, output: str, default_judge: str | None, ask: AskJudge
) -> tuple[list[Verdict], bool]:
    """Every validator's verdict, the task's then the case's own (a judge's from `ask`; a
    judge with no model, its own or `default_judge`, is skipped and the report says so), and
    whether the judges were skipped as unable to change the record (`judges_needed`)."""
    ctx = CheckContext(attempt.task.case_vars(attempt.case), attempt.case.expect)
    checks = attempt.task.checks_for(attempt.case)
    plain = run_validators(checks, output, ctx)
    asked = [c for c in checks if isinstance(c, JudgeValidator) and (c.model or default_judge)]
    guards = attempt.task.guards_for(attempt.case)
    needed = bool(asked) and judges_needed(checks, guards, plain, output, ctx)
    rest, verdicts = iter(plain), []
    role = CALL_ROLE.set("judge")  # a local judge's time is the judge's, not its model's
    try:
        for check in checks:
            if not isinstance(check, JudgeValidator):
                verdicts.append(next(rest))
            elif needed and check in asked:
                verdicts.append(await ask(attempt, check, output, ctx))
    finally:
        CALL_ROLE.reset(role)
    return verdicts, bool(asked) and not needed


def judges_needed(
    checks: Sequence[Validator],
    guards: Sequence[Guard],
    plain: Sequence[Verdict],
    output: str,
    ctx: CheckContext,
) -> bool:
    """Whether the task's judge validators could still change the attempt's record, given the
    deterministic verdicts `plain` (run_validators'): no when one of those already failed (the
    attempt fails whatever the judge says) and, when a judge is a production guard, a guard
    already failed too (the answer is caught whatever the judge says: not silent). A task with
    a deterministic check after a judge always asks it: the journal's verdicts are labelled by
    name and rank within their record (stats.frame), so a skipped judge must not move a later
    check's label; only trailing judges may be absent."""
    kinds = [c.needs_model for c in checks]
    if True in kinds and not all(kinds[kinds.index(True) :]):
        return True
    if not any(not v.passed and not v.unscored for v in plain):
        return True
    judged = {
        label for label, c in zip(validator_labels(checks), checks, strict=True) if c.needs_model
    }
    if not any(g.whole and g.label in judged for g in guards):
        return False
    return guard_outcome(guards, plain, output, ctx).passed is not False
