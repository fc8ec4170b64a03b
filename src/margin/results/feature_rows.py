"""The per-feature decision rows of results.json: which model (or system) each feature ships on.

A feature is a task; a product area is a suite, which one model must serve whole. The rows are
made by `margin.decide.features` and lead results.json, the report, summary.md and `margin run`.
"""

from __future__ import annotations

from margin.results.rows import Row


class FeatureMargin(Row):
    """How far the chosen model's reliability holds on one noise axis of the feature."""

    axis: str
    """The noise kind (`typos`, `casing`, …)."""
    margin: float | None
    """The highest level at which it still crosses, every lower level crossing too (None: it
    does not cross the clean prompt decidedly)."""
    status: str
    """`beyond` (crosses at every level tried), `bounded`, `undecided` or `none`."""
    breaks_at: float | None
    """The level past the margin, where it falls short or is undecided."""
    drops_at: float | None = None
    """The lowest level at which its pass rate is significantly below the clean prompt's on the
    same cases (one-sided exact McNemar, Holm; None when no level is)."""


class FeatureRow(Row):
    """One feature's decision: the cheapest model that crosses its target within its latency
    budget; else the cheapest delivery policy that does; else none, with the closest."""

    suite: str
    task: str
    target: float
    traffic: float
    """This feature's share of product requests (the tasks' `traffic`, normalised; equal when
    unset)."""
    budget_s: float | None
    """Its p95 latency budget in seconds, if any."""
    kind: str
    """`model`, `policy` or `none`."""
    choice: str | None
    """The model or policy it ships on (None when nothing crosses)."""
    passes: int | None = None
    """The choice's passes of n (a model; a policy's estimate has a rate and interval only)."""
    n: int | None = None
    rate: float | None = None
    low: float | None = None
    high: float | None = None
    cost_per_1000: float | None = None
    """Dollars per 1,000 requests of this feature on the choice."""
    latency_p95: float | None = None
    silent: int | None = None
    """The choice's wrong answers that every production guard let through (a model's count)."""
    guarded_n: int | None = None
    silent_rate: float | None = None
    silent_low: float | None = None
    silent_high: float | None = None
    margins: list[FeatureMargin] = []  # noqa: RUF012 (pydantic copies a default per instance)
    runner_up: str | None = None
    """The next cheapest model that crosses (or policy, when the choice is a policy)."""
    runner_up_cost_per_1000: float | None = None
    closest: str | None = None
    """When nothing crosses: the model with the highest lower bound."""
    closest_verdict: str | None = None
    closest_passes: int | None = None
    closest_n: int | None = None
    closest_low: float | None = None
    closest_high: float | None = None
    more_cases: float | None = None
    """When the closest is undecided: new cases, one attempt each, that settle it with a 4 in 5
    chance at its observed rate."""
    line: str
    """The decision in words, as `margin run` prints it."""


class AreaRow(Row):
    """A product area (suite) that one model must serve whole."""

    suite: str
    tasks: int
    model: str | None
    """The cheapest model that crosses every task of the suite within its budgets."""
    runner_up: str | None
    cost_per_1000: float | None
    """Dollars per 1,000 requests of the area on that model, weighted by the tasks' traffic."""
    closest: str | None
    """When none serves it whole: the model that crosses the most of its tasks."""
    line: str


class MixRow(Row):
    """Shipping each feature on its own choice against one model for everything."""

    features: int
    covered: int
    """Features with a choice (a model or a policy)."""
    cost_per_1000: float | None
    """Dollars per 1,000 product requests over the covered features, weighted by traffic."""
    latency_p95: float | None
    """p95 seconds of the mix's requests over the covered features, weighted by traffic."""
    latency_p95_exact: bool
    """False when a policy is chosen: the p95 is then an upper bound (the largest of the
    choices' p95s, which bounds a mixture's)."""
    single_model: str | None
    """The cheapest model that crosses every task (the one-model-for-everything answer)."""
    single_cost_per_1000: float | None
    """Dollars per 1,000 product requests on it, weighted by the same traffic."""
    single_latency_p95: float | None
    nominal: bool
    """A cost rests on a nominal (assumed) price."""
    line: str
