"""The rows of results.json, each type defined once (the policy rows in `policy_rows`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Interval(Row):
    """A pass rate with its evidence: never a rate without n and a 95% interval."""

    passes: int
    """Judged attempts that passed every validator."""
    n: int
    """Judged attempts (infra errors excluded)."""
    rate: float | None
    """passes / n (None when n = 0)."""
    low: float
    """Lower bound of the 95% interval (Clopper–Pearson on the effective n)."""
    high: float
    """Upper bound."""
    deff: float
    """Design effect of clustering by case (1 = attempts independent)."""
    n_eff: float
    """n / deff: the evidence the interval counts."""
    cases: int
    """Cases behind the attempts."""
    target: float | None
    """The reliability target the verdict is against."""
    verdict: str
    """`crosses` (low ≥ target), `falls short` (high < target) or `undecided`."""
    more_attempts: float | None = None
    """For an undecided cell: about how many more attempts at the current rate and clustering
    would put the interval around that rate off the target, which settles it only about half
    the time (None otherwise, or when the rate sits on the target)."""
    more_cases: float | None = None
    """For an undecided cell: how many new cases, one attempt each, settle it with an 80% chance
    if the true rate is the observed one (exact binomial; None otherwise, or when the rate sits
    on or too near the target)."""


class Cell(Interval):
    """Reliability, cost and latency of a set of attempts."""

    attempts: int
    """Attempts recorded, infra errors included."""
    infra_errors: int
    """Attempts that ended in an infra error (excluded from the rate)."""
    unscored: int = 0
    """Attempts a `judge` validator could not decide, or a validator crashed on (excluded from
    the rate, like an infra error)."""
    judge_cost_per_1000: float | None = 0.0
    """Dollars the judge calls cost per 1,000 task executions, apart from `cost_per_1000`."""
    partial: float | None
    """Mean share of validators passed."""
    partial_low: float | None = None
    """Lower bound of its 95% interval over cases (`margin.stats.shares`; None before it)."""
    partial_high: float | None = None
    """Upper bound."""
    latency_p50: float | None
    """Median seconds of judged calls."""
    latency_p95: float | None
    """95th percentile seconds of judged calls."""
    cost_per_1000: float | None
    """Dollars per 1,000 task executions (None when a price is unknown)."""
    spent_usd: float | None
    """Dollars billed in this run."""
    input_tokens: float | None
    """Mean prompt tokens."""
    output_tokens: float | None
    """Mean answer tokens."""
    truncated: int
    """Answers cut off at max_tokens."""
    over_max_tokens: int = 0
    """Answers longer than the max_tokens sent: the provider ignored the cap."""
    cache_hits: int
    """Answers served from margin's cache."""
    consistency: float | None
    """Share of cases whose attempts all agree (None with one attempt per case)."""
    consistency_low: float | None = None
    """Lower bound of its 95% interval over cases (None when consistency is)."""
    consistency_high: float | None = None
    """Upper bound."""
    retry_free: float | None
    """Share of cases that pass every attempt (None with one attempt per case)."""
    retry_free_low: float | None = None
    """Lower bound of its 95% interval over cases."""
    retry_free_high: float | None = None
    """Upper bound."""
    guarded_n: int | None = None
    """Judged attempts whose production-guard outcome is recorded: the n of `detected` and
    `silent` (None for a journal written before guards were recorded)."""
    detected: int | None = None
    """Failures some production guard caught (the answer broke a check that needs no reference):
    production can retry, escalate or refuse them."""
    detected_low: float | None = None
    """Lower bound of the 95% interval of detected / guarded_n (clustered by case)."""
    detected_high: float | None = None
    """Upper bound."""
    silent: int | None = None
    """Failures every production guard let through (only a check reading the case's `expect`
    failed): wrong answers production cannot see, that reach the user."""
    silent_low: float | None = None
    """Lower bound of the 95% interval of silent / guarded_n (clustered by case)."""
    silent_high: float | None = None
    """Upper bound."""


class ModelRow(Cell):
    """A model over all tasks."""

    model: str
    params: float | None
    """Parameter count, when the config gives it."""
    rank: int
    """1 + the models significantly better (paired mid-p McNemar, Holm)."""
    tied_with: list[str]
    """Models the data cannot separate from this one."""
    frontier: bool
    """On the Pareto frontier of (lower bound, cost per 1,000, p95 latency)."""


class TaskRow(Cell):
    """A model on one task, pooled over conditions."""

    model: str
    suite: str
    task: str
    rank: int
    """Rank band on this task."""
    tied_with: list[str]


class ConditionRow(Cell):
    """A model on one task under one condition."""

    model: str
    suite: str
    task: str
    condition: str
    """`p0` (the clean prompt), `p1…` (paraphrases), `kind@level` (noise)."""
    paraphrase: int
    noise_kind: str
    noise_level: float


class ValidatorRow(Interval):
    """One validator's pass rate for a model on a task (and condition)."""

    model: str
    suite: str
    task: str
    condition: str | None = None
    """None for the task pooled over conditions."""
    validator: str


class PassKRow(Row):
    """pass^k and pass@k of a model on a task (tau-bench's C(c,k)/C(n,k), averaged)."""

    model: str
    suite: str
    task: str
    k: int
    cases: int
    pass_hat_k: float
    pass_at_k: float
    pass_hat_k_low: float | None = None
    """Lower bound of its 95% interval over cases (`margin.stats.shares`; None before it)."""
    pass_hat_k_high: float | None = None
    """Upper bound."""
    pass_at_k_low: float | None = None
    """Lower bound of its 95% interval over cases."""
    pass_at_k_high: float | None = None
    """Upper bound."""


class DropRow(Row):
    """Reliability under one noise level against the clean prompt."""

    model: str
    suite: str
    task: str
    noise_kind: str
    noise_level: float
    n: int
    rate: float | None
    low: float
    high: float
    verdict: str
    clean_rate: float | None
    drop: float | None
    """PDR = 1 − rate / clean_rate."""
    pairs: int = 0
    """Noisy attempts judged with their clean twin (same case, wording and repeat)."""
    losses: int = 0
    """Twins the clean prompt passed and the noisy one failed."""
    gains: int = 0
    """Twins the noisy prompt passed and the clean one failed."""
    p_value: float | None = None
    """One-sided exact McNemar p-value that the noisy prompt passes less often (after the
    design effect of clustering by case)."""
    p_holm: float | None = None
    """Holm-adjusted across the levels of this axis."""
    significant: bool = False
    """The drop is significant at α = 0.05 (p_holm ≤ α)."""


class SpreadRow(Row):
    """Pass rate across the clean prompt and its paraphrases."""

    model: str
    suite: str
    task: str
    wordings: int
    max_p: float
    avg_p: float
    min_p: float
    worst: str
    avg_passes: int | None = None
    """Passes of the clean prompt and its paraphrases pooled (None before it)."""
    avg_n: int | None = None
    """Their judged attempts: avg_passes / avg_n is AvgP when every wording has the same n."""
    avg_low: float | None = None
    """Lower bound of the 95% interval of the pooled rate, clustered by case."""
    avg_high: float | None = None
    """Upper bound."""


class MarginRow(Row):
    """The highest noise level at which a model still crosses, with every lower level crossing."""

    model: str
    suite: str
    task: str
    axis: str
    margin: float | None
    """None when it does not cross even clean (or the clean verdict is undecided)."""
    status: str
    """`none`, `bounded`, `undecided` or `beyond` (crosses at every level tried)."""
    breaks_at: float | None
    levels: int
    drops_at: float | None = None
    """The lowest level at which the pass rate is significantly below the clean prompt's on
    the same cases (None when no level is): decided with far fewer cases than a crossing."""


class PairRow(Row):
    """Two models on the same attempts: mid-p McNemar, difference with its interval."""

    scope: str
    """`suite/task`, or `all`."""
    model_a: str
    model_b: str
    pairs: int
    both: int
    only_a: int
    only_b: int
    neither: int
    rate_a: float | None
    rate_b: float | None
    diff: float | None
    low: float
    high: float
    deff: float
    p_value: float
    p_holm: float
    significant: bool


class JudgeKey(Row):
    """Which judge: a task's `judge` validator and the model judging for it. The first fields
    of a judge's row here, of its `margin judge-check` result and of the run's judges.json
    entry (`margin.judges.trust`)."""

    suite: str
    task: str
    validator: str
    """`judge`, or `judge#2` for a task's second judge."""
    judge: str
    """The judge's name in the models config."""


class JudgeRow(JudgeKey):
    """A `judge` validator of the run: how it behaved here, and whether to trust it."""

    scored: int
    """Attempts it decided."""
    unscored: int
    """Attempts it could not decide (excluded from pass rates)."""
    calls: int
    """Judge calls made (cache hits excluded)."""
    cost_usd: float
    """Dollars the judge calls cost, apart from the models'."""
    self_agreement: float | None
    """Mean share of its repeated answers agreeing with their majority."""
    checked: bool
    """A `margin judge-check` result for this judge and rubric was found."""
    examples: int | None
    agreement: float | None
    kappa: float | None
    """Cohen's κ against the human labels."""
    kappa_low: float | None
    kappa_high: float | None
    false_pass_rate: float | None
    false_fail_rate: float | None
    matrix: list[list[int]] | None = None
    """The judge-check's counts: [[human pass & judge pass, human pass & judge fail],
    [human fail & judge pass, human fail & judge fail]] (None without a check): the n of
    agreement, false pass and false fail."""
    self_agreement_n: int = 0
    """Verdicts with repeated judge answers behind `self_agreement`."""
    min_kappa: float
    trusted: bool
    """Checked with this judge and rubric, κ ≥ min_kappa: it may decide a gate."""
    status: str


class ShortfallRow(Row):
    """Where a model that is not recommended falls short, is undecided, or is too slow."""

    model: str
    status: str  # `falls short`, `undecided` or `too slow`
    task: str  # `suite/task`
    rate: float | None
    low: float
    high: float
    passes: int
    n: int
    target: float
    condition: str | None = None  # its worst condition on that task
    condition_rate: float | None = None
    validator: str | None = None  # the constraint that breaks first (lowest pass rate) there
    validator_rate: float | None = None
    more_attempts: float | None = None  # undecided: about how many more attempts settle it
    more_cases: float | None = None  # undecided: new single-attempt cases, 80% chance to settle
    latency_p95: float | None = None
    budget_s: float | None = None


class Recommendation(Row):
    """The decision (`margin.decide.rank.recommend`): the cheapest model that crosses every
    task, the runner-up, and where every other model falls short."""

    model: str | None
    """The cheapest model that crosses every task within its latency budget; None if none."""
    runner_up: str | None
    eligible: list[str]  # cheapest first
    closest: str | None
    """When none is eligible: the model whose worst task rate is highest."""
    undecided: int
    """Undecided model × task cells."""
    shortfalls: list[ShortfallRow]


class RecommendationRow(Recommendation):
    """The answer."""

    lines: list[str]
    """The recommendation in words, as `margin run` prints it."""
    policies: list[str] = []
    """Delivery policies whose estimate crosses every task they were estimated on (cheapest
    first): a system that may ship where a bare model does not, or cheaper."""
