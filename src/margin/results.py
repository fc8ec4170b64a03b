"""results.json: the scored run, versioned, with a shipped JSON Schema.

It is the stable machine interface: the report, the gate and other tools read it, never the
runner's objects. `RESULTS_VERSION` changes when a field changes meaning or goes away; new
optional fields do not change it. `results.schema.json` beside this module is generated from
these models (`margin schema --kind results` prints it) and a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from margin.errors import UserError, invalid_data
from margin.rundir import read_json, read_run_file, write_atomically
from margin.stats.score import Scores

RESULTS_VERSION = 1
RESULTS_NAME = "results.json"
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Interval(_Row):
    """A pass rate with its evidence: never a rate without n and a 95% interval."""

    passes: int
    """Judged attempts that passed every validator."""
    n: int
    """Judged attempts (infra errors excluded)."""
    rate: float | None
    """passes / n (None when n = 0)."""
    low: float
    """Lower bound of the 95% interval (Wilson on the effective n)."""
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
    """For an undecided cell: about how many more attempts would settle it (None otherwise, or
    when the rate sits on the target)."""


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
    retry_free: float | None
    """Share of cases that pass every attempt (None with one attempt per case)."""


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


class PassKRow(_Row):
    """pass^k and pass@k of a model on a task (tau-bench's C(c,k)/C(n,k), averaged)."""

    model: str
    suite: str
    task: str
    k: int
    cases: int
    pass_hat_k: float
    pass_at_k: float


class DropRow(_Row):
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


class SpreadRow(_Row):
    """Pass rate across the clean prompt and its paraphrases."""

    model: str
    suite: str
    task: str
    wordings: int
    max_p: float
    avg_p: float
    min_p: float
    worst: str


class MarginRow(_Row):
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


class PairRow(_Row):
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


class PolicyRow(_Row):
    """A delivery policy on one task, estimated from recorded repeats (no new calls)."""

    policy: str
    suite: str
    task: str
    rate: float
    low: float
    high: float
    """95% interval: cluster bootstrap over cases, widened to Wilson on the cases."""
    cases: int
    prompts: int
    thin: int
    """Prompts with fewer recorded repeats than a step's tries."""
    calls: float
    """Expected calls per task execution."""
    cost_per_1000: float | None
    latency_p50: float | None = None
    latency_p95: float | None = None


class PolicyRunRow(_Row):
    """A delivery policy on one task as run for real (`margin run --policy`): its executions'
    outcomes, to set against the estimate from recorded repeats."""

    policy: str
    suite: str
    task: str
    rate: float | None
    low: float
    high: float
    """95% interval: Wilson on the effective n, the case's executions correlated."""
    passes: int
    n: int
    """Finished executions (a try passed, or every try failed a validator)."""
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


class JudgeRow(_Row):
    """A `judge` validator of the run: how it behaved here, and whether to trust it."""

    suite: str
    task: str
    validator: str
    """`judge`, or `judge#2` for a task's second judge."""
    judge: str
    """The judge's name in the models config."""
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
    min_kappa: float
    trusted: bool
    """Checked with this judge and rubric, κ ≥ min_kappa: it may decide a gate."""
    status: str


class ShortfallRow(_Row):
    """Where a model that is not recommended falls short, is undecided, or is too slow."""

    model: str
    status: str
    task: str
    rate: float | None
    low: float
    high: float
    passes: int
    n: int
    target: float
    condition: str | None = None
    condition_rate: float | None = None
    validator: str | None = None
    validator_rate: float | None = None
    more_attempts: float | None = None
    latency_p95: float | None = None
    budget_s: float | None = None


class RecommendationRow(_Row):
    """The answer."""

    model: str | None
    """The cheapest model that crosses every task within its latency budget; None if none."""
    runner_up: str | None
    eligible: list[str]
    closest: str | None
    """When none is eligible: the model whose worst task rate is highest."""
    undecided: int
    """Undecided model × task cells."""
    shortfalls: list[ShortfallRow]
    lines: list[str]
    """The recommendation in words, as `margin run` prints it."""
    policies: list[str] = []
    """Delivery policies whose estimate crosses every task they were estimated on (cheapest
    first): a system that may ship where a bare model does not, or cheaper."""


class SuiteFact(_Row):
    name: str
    sha256: str | None
    """Of the run's copy of the suite file."""
    tasks: list[str]
    targets: dict[str, float]
    fingerprints: dict[str, dict[str, str]] = {}
    """Per task: sha256 of its `prompt` (system, prompt, paraphrases, vars), `cases` (inputs
    and expectations) and `validators`, so a gate can say what changed against a baseline."""


class ModelFact(_Row):
    name: str
    model: str
    params: str | None
    api_base: str | None
    temperature: float
    max_tokens: int
    price_per_mtok: dict[str, float] | None
    parallel: int | None = None
    """Calls decoded together in one local model (`parallel`), if set."""
    batched_attempts: int = 0
    """Its attempts run under batching: their latency is a shared model's, not one call's."""


class RunFacts(_Row):
    """What was run, by which versions, and what it cost."""

    identity: str
    margin_version: str
    litellm_version: str
    written_at: str | None
    """When the run directory was last written."""
    scored_at: str
    suites: list[SuiteFact]
    models: list[ModelFact]
    settings: dict[str, Any]
    attempts: int
    judged: int
    infra_errors: dict[str, int]
    """By class (RateLimited, ServerError, …)."""
    cache_hits: int
    over_max_tokens: int = 0
    """Answers longer than the max_tokens sent: their providers ignored the cap."""
    spent_usd: float
    repeats: int
    """The most repeats any attempt reached."""
    regime: str
    """What the repeats measure at the run's temperatures."""
    latency_note: str | None = None
    """Which models' latency was measured under batching (`parallel`), if any."""


class Results(_Row):
    """A scored run."""

    results_version: int
    run: RunFacts
    recommendation: RecommendationRow
    models: list[ModelRow]
    tasks: list[TaskRow]
    conditions: list[ConditionRow]
    validators: list[ValidatorRow]
    validators_by_condition: list[ValidatorRow]
    pass_k: list[PassKRow]
    noise_drops: list[DropRow]
    paraphrase_spread: list[SpreadRow]
    margins: list[MarginRow]
    comparisons: list[PairRow]
    policies: list[PolicyRow] = []
    """The run's `run.policies`, estimated per task."""
    policy_runs: list[PolicyRunRow] = []
    """The policies run for real (`margin run --policy`), measured per task."""
    judges: list[JudgeRow] = []
    """The run's `judge` validators, with their human-label check and trust."""


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json."""
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "margin results"
    schema["$id"] = f"https://margin.dev/schemas/results-{RESULTS_VERSION}.json"
    return schema


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            clean[str(key)] = value
        if isinstance(clean.get("tied_with"), str):
            clean["tied_with"] = [m for m in clean["tied_with"].split(", ") if m]
        rows.append(clean)
    return rows


def build_results(folder: Path, scores: Scores, lines: list[str]) -> Results:
    """The results of the run directory `folder` from its scores."""
    run_file = read_run_file(folder)
    if run_file is None:
        raise UserError("not a margin run directory (no run.json)", path=folder)
    estimated, run = _policy_records(run_file, scores)
    policy_rows = [PolicyRow.model_validate(r) for r in estimated]
    crossing, policy_lines = _crossing_policies(policy_rows, scores)
    recommendation = {
        **asdict(scores.recommendation),
        "lines": [*lines, *policy_lines],
        "policies": crossing,
    }
    recommendation["shortfalls"] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()}
        for s in recommendation["shortfalls"]
    ]
    return Results(
        results_version=RESULTS_VERSION,
        run=_run_facts(folder, run_file, scores),
        recommendation=RecommendationRow.model_validate(recommendation),
        models=[ModelRow.model_validate(r) for r in _records(scores.models)],
        tasks=[TaskRow.model_validate(r) for r in _records(scores.tasks)],
        conditions=[ConditionRow.model_validate(r) for r in _records(scores.conditions)],
        validators=[ValidatorRow.model_validate(r) for r in _validator_records(scores.validators)],
        validators_by_condition=[
            ValidatorRow.model_validate(r)
            for r in _validator_records(scores.validators_by_condition)
        ],
        pass_k=[PassKRow.model_validate(r) for r in _records(scores.pass_k)],
        noise_drops=[DropRow.model_validate(r) for r in _records(scores.drops)],
        paraphrase_spread=[SpreadRow.model_validate(r) for r in _records(scores.spread)],
        margins=[MarginRow.model_validate(r) for r in _records(scores.margins)],
        comparisons=[PairRow.model_validate(r) for r in _records(scores.pairs)],
        policies=policy_rows,
        policy_runs=[PolicyRunRow.model_validate(r) for r in run],
        judges=[JudgeRow.model_validate(r) for r in _judge_records(folder, run_file)],
    )


def _targets(scores: Scores) -> dict[tuple[str, str], float]:
    """Each scored task's target."""
    return {
        (str(suite), str(task)): float(target)
        for suite, task, target in scores.tasks[["suite", "task", "target"]].to_numpy(dtype=object)
    }


def _crossing_policies(rows: list[PolicyRow], scores: Scores) -> tuple[list[str], list[str]]:
    """Policies whose lower bound reaches the target on every task (none undecided), cheapest
    first, and a line for each: its worst task and its cost against the recommended model's."""
    from margin.numbers import interval, money, percent

    targets = _targets(scores)
    by_policy: dict[str, list[PolicyRow]] = {}
    for row in rows:
        by_policy.setdefault(row.policy, []).append(row)
    crossing = []
    for policy, tasks in by_policy.items():
        covers_all = {(r.suite, r.task) for r in tasks} == set(targets)
        if covers_all and all(r.low >= targets[(r.suite, r.task)] for r in tasks):
            cost = sum(r.cost_per_1000 or 0.0 for r in tasks) / len(tasks)
            crossing.append((cost, policy, min(tasks, key=lambda r: r.low)))
    crossing.sort(key=lambda item: item[0])
    costs = {
        str(model): float(cost)
        for model, cost in scores.models[["model", "cost_per_1000"]].to_numpy(dtype=object)
    }
    chosen = scores.recommendation.model
    lines = []
    for cost, policy, worst in crossing:
        text = (
            f"Policy {policy} crosses every task (estimated from recorded repeats; worst"
            f" {worst.suite}/{worst.task} {percent(worst.rate)} {interval(worst.low, worst.high)}),"
            f" {money(cost)} per 1,000 tasks"
        )
        if chosen is not None:
            reference = costs.get(chosen, float("nan"))
            if reference > 0:
                text += f", {cost / reference:.0%} of {chosen}'s cost"
        lines.append(text + ".")
    return [policy for _, policy, _ in crossing], lines


def _policy_records(
    run_file: dict[str, Any], scores: Scores
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's policies estimated from recorded repeats, and measured where run for real."""
    from margin.policies import estimate_all, measured, parse_policy

    texts = list((run_file.get("settings") or {}).get("policies") or [])
    if not texts:
        return [], []
    names = {str(m["name"]) for m in run_file.get("models") or []}
    policies = [parse_policy(text, names) for text in texts]
    targets = _targets(scores)
    run = measured(scores.attempts.steps, policies, targets)
    return _records(estimate_all(scores.attempts.frame, policies)), _records(run)


def _judge_records(folder: Path, run_file: dict[str, Any]) -> list[dict[str, Any]]:
    from margin.config import RunSettings
    from margin.judges import judge_rows

    settings = RunSettings.model_validate(run_file.get("settings") or {})
    return judge_rows(folder, settings.judge.min_kappa)


def _validator_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k not in {"consistency", "retry_free"}}
        for r in _records(frame)
    ]


def _run_facts(folder: Path, run_file: dict[str, Any], scores: Scores) -> RunFacts:
    frame = scores.attempts.frame
    suites = []
    for name in run_file.get("suites") or {}:
        copy = folder / "suites" / f"{name}.yaml"
        digest = hashlib.sha256(copy.read_bytes()).hexdigest() if copy.exists() else None
        tasks = scores.tasks[scores.tasks["suite"] == name]
        targets = {str(t): float(v) for t, v in zip(tasks["task"], tasks["target"], strict=True)}
        suites.append(
            SuiteFact(
                name=name,
                sha256=digest,
                tasks=sorted(targets),
                targets=targets,
                fingerprints=_fingerprints(copy) if copy.exists() else {},
            )
        )
    batched = {
        str(k): int(v) for k, v in frame.groupby("model", observed=True)["batched"].sum().items()
    }
    models = []
    for spec in run_file.get("models") or []:
        sampling = spec.get("sampling") or {}
        price = spec.get("price")
        models.append(
            ModelFact(
                name=spec["name"],
                model=spec["model"],
                params=spec.get("params"),
                api_base=spec.get("api_base"),
                temperature=float(sampling.get("temperature", 0.0)),
                max_tokens=int(sampling.get("max_tokens", 256)),
                price_per_mtok=price,
                parallel=spec.get("parallel"),
                batched_attempts=batched.get(spec["name"], 0),
            )
        )
    errors = Counter(str(e) for e in frame["error"].dropna())
    temperatures = sorted({m.temperature for m in models})
    repeats = int(frame["repeat"].max()) + 1 if len(frame) else 0
    return RunFacts(
        identity=str(run_file["identity"]),
        margin_version=_version("margin"),
        litellm_version=_version("litellm"),
        written_at=run_file.get("written_at"),
        scored_at=datetime.now(UTC).isoformat(timespec="seconds"),
        suites=suites,
        models=models,
        settings=run_file.get("settings") or {},
        attempts=len(frame),
        judged=int(frame["judged"].sum()),
        infra_errors=dict(sorted(errors.items())),
        cache_hits=int(frame["cache_hit"].sum()),
        over_max_tokens=int(frame["over_max_tokens"].sum()),
        spent_usd=float(frame["cost_usd"].fillna(0).sum()),
        repeats=repeats,
        regime=_regime(temperatures, repeats),
        latency_note=_latency_note(models),
    )


def _latency_note(models: list[ModelFact]) -> str | None:
    loaded = [m for m in models if m.batched_attempts]
    if not loaded:
        return None
    names = ", ".join(f"{m.name} (parallel: {m.parallel})" for m in loaded)
    return (
        f"Latency of {names} was measured under batching: each call shared the model with"
        " others decoded together, so its p50 and p95 are a loaded server's, not one user's."
    )


def task_fingerprints(task: Any) -> dict[str, str]:
    """sha256 of a task's wording, cases and validators (see SuiteFact.fingerprints)."""
    parts = {
        "prompt": task.model_dump(mode="json", include={"system", "prompt", "paraphrases", "vars"}),
        "cases": task.model_dump(mode="json", include={"cases"}),
        "validators": task.model_dump(mode="json", include={"validators"}),
    }
    return {
        name: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
        for name, value in parts.items()
    }


def _fingerprints(copy: Path) -> dict[str, dict[str, str]]:
    from margin.suite import load_suite

    return {task.id: task_fingerprints(task) for task in load_suite(copy).tasks}


def _regime(temperatures: list[float], repeats: int) -> str:
    if repeats <= 1:
        return (
            "One attempt per case and condition: the variation comes from cases, paraphrases "
            "and noise; repeats were not measured."
        )
    if temperatures and max(temperatures) == 0:
        return (
            "Temperature 0: repeats mostly measure the provider's nondeterminism (a local model "
            "returns the same answer); the variation comes from cases, paraphrases and noise."
        )
    return (
        f"Sampling at temperature {', '.join(f'{t:g}' for t in temperatures)}: repeats measure "
        "the model's own variation, as users will meet it."
    )


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def write_results(folder: Path, results: Results, out: Path | None = None) -> Path:
    """Write results.json atomically into `out` (default: the run directory)."""
    path = (out or folder) / RESULTS_NAME
    write_atomically(path, results.model_dump_json(indent=1))
    return path


def read_results(path: Path) -> Results:
    """A results.json (or a run directory holding one); a file that cannot be read, is not JSON,
    is of another version or does not fit the schema is a UserError naming it (and the field)."""
    if path.is_dir():
        path = path / RESULTS_NAME
    data = read_json(path)
    found = data.get("results_version") if isinstance(data, dict) else None
    if found != RESULTS_VERSION:
        raise UserError(
            f"results version {found!r}; this margin reads version {RESULTS_VERSION}",
            path=path,
        )
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        raise invalid_data(exc, "not margin results", path) from None
