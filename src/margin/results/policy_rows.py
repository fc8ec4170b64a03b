"""The delivery-policy rows of results.json: estimated from recorded repeats, and run for real."""

from __future__ import annotations

from margin.results.rows import Row


class PolicyRow(Row):
    """A delivery policy on one task, estimated from recorded repeats (no new calls): the next
    try happens only when a production guard fails, and `rate` is how often the answer it
    delivers (the first whose guards pass, else the last try's) passes every validator."""

    policy: str
    suite: str
    task: str
    rate: float
    """Estimated share of executions whose delivered answer passes every validator."""
    low: float
    high: float
    """95% interval: cluster bootstrap over cases, widened to `rate_interval` on the cases."""
    silent: float | None = None
    """Estimated share of executions whose delivered answer passes every guard and fails a
    reference check: wrong, and unseen by the policy (over the same `prompts` as `rate`)."""
    silent_low: float | None = None
    """Lower bound of its 95% interval (computed as `low`)."""
    silent_high: float | None = None
    """Upper bound."""
    oracle: bool = False
    """Spelled `on=any`: moves on whenever any validator fails, as if it knew the right answer.
    An upper bound only, never recommended."""
    guards_unknown: int = 0
    """Failed answers whose guard outcome was not recorded (journals before version 4), counted
    as caught: the estimate is then an upper bound, never recommended."""
    upper_bound: str | None = None
    """Why this row is only an upper bound, shown beside it wherever it appears (None for an
    estimate that follows the guards)."""
    cases: int
    prompts: int
    thin: int
    """Prompts with fewer recorded repeats than a step's tries."""
    calls: float
    """Expected calls per task execution."""
    cost_per_1000: float | None
    latency_p50: float | None = None
    latency_p95: float | None = None


class PolicyRunRow(Row):
    """A delivery policy on one task as run for real (`margin run --policy`): its executions'
    outcomes, to set against the estimate from recorded repeats."""

    policy: str
    suite: str
    task: str
    rate: float | None
    low: float
    high: float
    """95% interval: Clopper–Pearson on the effective n, the case's executions correlated."""
    passes: int
    n: int
    """Finished executions (an answer stopped the policy, or every try went on)."""
    cases: int
    verdict: str
    target: float
    calls: float
    """Calls per execution, measured."""
    cost_per_1000: float | None
    latency_p50: float | None
    """End-to-end seconds: the sum of an execution's tries."""
    latency_p95: float | None
    infra_errors: int
    """Executions stopped by an infra error on a try (excluded from the rate)."""
    incomplete: int
    """Executions not finished (the run stopped before their next try)."""
    guarded_n: int | None = None
    """Finished executions whose delivered answer's guard outcome is recorded: the n of
    `silent`."""
    silent: int | None = None
    """Executions whose delivered answer passed every guard and failed a reference check."""
    silent_low: float | None = None
    """Lower bound of the 95% interval of silent / guarded_n (clustered by case)."""
    silent_high: float | None = None
    """Upper bound."""
    oracle: bool = False
    """Spelled `on=any`: each try followed the oracle rule (go on when any validator fails)."""
    upper_bound: str | None = None
    """Why this row is only an upper bound (the oracle's label), None otherwise."""
