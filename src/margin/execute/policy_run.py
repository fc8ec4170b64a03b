"""Delivery policies run for real (`margin run --policy`), so an estimate can meet reality.

A policy execution is one use of the policy on one prompt (a case × variant): its first try,
then — only when a production guard fails on that answer (`guards_passed` False) — the next try,
and so on until an answer's guards pass or the tries run out; a policy spelled `on=any` (the
oracle upper bound) goes on whenever any validator fails (`passed` False). An answer whose guards
could not be evaluated (an unscored judge, recorded with an error) stops its execution like an
infra error: going on would call another model on an answer nobody judged, and delivering it
would score an answer with no verdict; `--retry-errors` asks again and the execution goes on
from there. Each try is an ordinary attempt in the run's journal, keyed
`model|suite/task/case|variant|rE|POLICY#sS` (E the execution, S the try) and carrying `policy`
and `step`, so it is paid, cached, budgeted, retried and resumed like any other attempt, and
never counted as the bare model's. Tries run in stages — every execution's try S, then S + 1
for those whose tries so far all went on — and what continues is read back from the journal, so
a killed run resumes exactly. An execution whose try ends in an infra error stops there (it is
counted apart, never as a failure); `--retry-errors` attempts that try again and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from margin.config import RunSettings
from margin.decide.policy_spec import Policy
from margin.execute.delivery import RunStats
from margin.execute.shards import shard_of
from margin.journal.records import JournalState, journal_state
from margin.plan import Attempt, AttemptKey, Plan, derive_seed

Batch = Callable[[Sequence[Attempt], JournalState], RunStats]
"""Runs one stage's attempts into the journal (given its state before) and returns the totals."""


Templates = dict[tuple[str, str, str, str, str], Attempt]
"""(model, suite, task, case, variant) → the plan's first repeat of that prompt."""


def templates(plan: Plan) -> Templates:
    """Each prompt's first planned attempt per model: what a policy's tries are made from."""
    return {
        (a.key.model, a.key.suite, a.key.task, a.key.case, a.key.variant): a
        for a in plan.attempts
        if a.key.repeat == 0
    }


def stage(
    first: Templates,
    policy: Policy,
    index: int,
    state: JournalState,
    settings: RunSettings,
    retry_errors: bool = False,
    shard: tuple[int, int] | None = None,
) -> list[Attempt]:
    """The tries at position `index` still to run: for every execution whose earlier tries are
    all journaled as answers that make the policy go on (`Policy.goes_on`), and whose try
    `index` is not journaled yet."""
    tries = policy.tries
    model = tries[index]
    prompts = sorted({key[1:] for key in first})
    pending = []
    for suite, task, case, variant in prompts:
        if any((m, suite, task, case, variant) not in first for m in set(tries)):
            continue  # a step's model does not run this prompt: the policy cannot either
        template = first[(model, suite, task, case, variant)]
        for execution in range(settings.repeats):
            keys = [
                AttemptKey(tries[step], suite, task, case, variant, execution, policy.name, step)
                for step in range(index + 1)
            ]
            earlier = [state.latest.get(str(key)) for key in keys[:-1]]
            if any(
                record is None or not policy.goes_on(record.passed, record.guards_passed)
                for record in earlier
            ):
                continue  # delivered already, stopped on an infra error, or not reached yet
            this = keys[-1]
            if shard is not None and shard_of(this, shard[1]) != shard[0]:
                continue  # another shard's execution
            done = state.latest.get(str(this))
            if done is not None and not (retry_errors and done.infra_error):
                continue
            pending.append(replace(template, key=this, seed=derive_seed(settings.seed, this)))
    return pending


def run_policies(
    plan: Plan,
    policies: Sequence[Policy],
    settings: RunSettings,
    journal: Path,
    batch: Batch,
    retry_errors: bool = False,
    shard: tuple[int, int] | None = None,
) -> RunStats | None:
    """Run every policy's executions, stage by stage; the last batch's totals (None if nothing
    was left to run). Stops at a halt, the budget cap, or attempts left unrun."""
    stats = None
    first = templates(plan)  # once: a large plan is not walked again for every stage
    for policy in policies:
        for index in range(len(policy.tries)):
            state = journal_state(journal)
            pending = stage(first, policy, index, state, settings, retry_errors, shard)
            if not pending:
                continue
            stats = batch(pending, state)
            if stats.halted or stats.budget_stopped or stats.not_run:
                return stats
    return stats
