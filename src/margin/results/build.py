"""Build results.json from a run directory's scores."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from margin.config import RunSettings
from margin.decide.policies import estimate_all
from margin.decide.policy_runs import measured
from margin.decide.policy_spec import parse_policy
from margin.decide.portfolio import decide
from margin.decide.scores import Scores
from margin.errors import UserError
from margin.journal.rundir import read_run_file
from margin.judges.trust import judge_rows
from margin.results.document import RESULTS_VERSION, ModelFact, Results, RunFacts, SuiteFact
from margin.results.policy_rows import PolicyRow, PolicyRunRow
from margin.results.rows import (
    ConditionRow,
    DropRow,
    JudgeRow,
    MarginRow,
    ModelRow,
    PairRow,
    PassKRow,
    RecommendationRow,
    ShortfallRow,
    SpreadRow,
    TaskRow,
    ValidatorRow,
)
from margin.stats.numbers import interval, money, percent
from margin.suite.load import load_suite
from margin.suite.tasks import Suite, Task


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `frame` as plain dicts: NaN is None, numpy scalars are Python's. Read by
    iterating each column once (what `to_dict("records")` does, less its per-column `iloc`)."""
    rows: list[dict[str, Any]] = []
    names = [str(name) for name in frame.columns]
    for values in zip(*(column for _, column in frame.items()), strict=True):
        clean = {}
        for key, value in zip(names, values, strict=True):
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            clean[key] = value
        if isinstance(clean.get("tied_with"), str):
            clean["tied_with"] = [m for m in clean["tied_with"].split(", ") if m]
        rows.append(clean)
    return rows


def build_results(folder: Path, scores: Scores, lines: list[str]) -> Results:
    """The results of the run directory `folder` from its scores."""
    run_file = read_run_file(folder)
    if run_file is None:
        raise UserError("not a margin run directory (no run.json)", path=folder)
    policy_rows, policy_runs = _policy_rows(run_file, scores)
    crossing, policy_lines = _crossing_policies(policy_rows, scores)
    decided = scores.recommendation
    recommendation = RecommendationRow(
        **{**dict(decided), "shortfalls": [_no_nan(s) for s in decided.shortfalls]},
        lines=[*lines, *policy_lines],
        policies=crossing,
    )
    decisions = decide(
        scores.tasks, scores.margins, policy_rows, scores.budgets, scores.traffic,
        scores.attempts.frame, decided.model, _nominal(run_file), scores.order,
    )  # fmt: skip
    return Results(
        results_version=RESULTS_VERSION,
        features=decisions.features,
        areas=decisions.areas,
        mix=decisions.mix,
        run=_run_facts(folder, run_file, scores),
        recommendation=recommendation,
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
        policy_runs=policy_runs,
        judges=_judges(folder, run_file),
    )


def _targets(scores: Scores) -> dict[tuple[str, str], float]:
    """Each scored task's target."""
    return {
        (str(suite), str(task)): float(target)
        for suite, task, target in scores.tasks[["suite", "task", "target"]].to_numpy(dtype=object)
    }


def _crossing_policies(rows: list[PolicyRow], scores: Scores) -> tuple[list[str], list[str]]:
    """Policies whose lower bound reaches the target on every task (none undecided), cheapest
    first, and a line for each: its worst task, its silent failures there, and its cost against
    the recommended model's. An upper bound (an `on=any` oracle, or guards not recorded) is never
    named; one that would cross gets a line saying why it is not."""
    targets = _targets(scores)
    by_policy: dict[str, list[PolicyRow]] = {}
    for row in rows:
        by_policy.setdefault(row.policy, []).append(row)
    crossing: list[tuple[float, str, PolicyRow, str | None]] = []
    bounds: list[tuple[float, str, PolicyRow, str | None]] = []
    for policy, tasks in by_policy.items():
        covers_all = {(r.suite, r.task) for r in tasks} == set(targets)
        if covers_all and all(r.low >= targets[(r.suite, r.task)] for r in tasks):
            cost = sum(r.cost_per_1000 or 0.0 for r in tasks) / len(tasks)
            worst = min(tasks, key=lambda r: r.low)
            label = next((r.upper_bound for r in tasks if r.upper_bound), None)
            (bounds if label else crossing).append((cost, policy, worst, label))
    crossing.sort(key=lambda item: item[0])
    costs = {
        str(model): float(cost)
        for model, cost in scores.models[["model", "cost_per_1000"]].to_numpy(dtype=object)
    }
    chosen = scores.recommendation.model
    lines = []
    for cost, policy, worst, _ in crossing:
        text = (
            f"Policy {policy} crosses every task (estimated from recorded repeats; worst"
            f" {worst.suite}/{worst.task} {percent(worst.rate)} {interval(worst.low, worst.high)}"
            f"{_silent_text(worst)}), {money(cost)} per 1,000 tasks"
        )
        if chosen is not None:
            reference = costs.get(chosen, float("nan"))
            if reference > 0:
                text += f", {cost / reference:.0%} of {chosen}'s cost"
        lines.append(text + ".")
    for _, policy, worst, label in bounds:
        lines.append(
            f"Policy {policy} would cross every task only as an {label}: never recommended"
            f" (worst {worst.suite}/{worst.task} {percent(worst.rate)}"
            f" {interval(worst.low, worst.high)})."
        )
    return [policy for _, policy, _, _ in crossing], lines


def _silent_text(row: PolicyRow) -> str:
    """`, silent failures 2.0% [0.1, 9.0]`: delivered answers wrong past every guard."""
    if row.silent is None or row.silent_low is None or row.silent_high is None:
        return ""
    return f", silent failures {percent(row.silent)} {interval(row.silent_low, row.silent_high)}"


def _no_nan(row: ShortfallRow) -> ShortfallRow:
    """The shortfall as results.json holds it: a rate or latency not measured (NaN) is null."""
    nan = {k: None for k, v in row if isinstance(v, float) and math.isnan(v)}
    return row.model_copy(update=nan) if nan else row


def _policy_rows(
    run_file: dict[str, Any], scores: Scores
) -> tuple[list[PolicyRow], list[PolicyRunRow]]:
    """The run's policies estimated from recorded repeats, and measured where run for real."""
    texts = list((run_file.get("settings") or {}).get("policies") or [])
    if not texts:
        return [], []
    names = {str(m["name"]) for m in run_file.get("models") or []}
    policies = [parse_policy(text, names) for text in texts]
    run = measured(scores.attempts.steps, policies, _targets(scores))
    runs = [PolicyRunRow.model_validate(r) for r in _records(run)]
    return estimate_all(scores.attempts.frame, policies), runs


def _nominal(run_file: dict[str, Any]) -> bool:
    """Whether a model's price in the run is nominal (assumed, not billed)."""
    return any(bool((m.get("price") or {}).get("nominal")) for m in run_file.get("models") or [])


def _judges(folder: Path, run_file: dict[str, Any]) -> list[JudgeRow]:
    settings = RunSettings.model_validate(run_file.get("settings") or {})
    return judge_rows(folder, settings.judge.min_kappa)


def _validator_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k not in {"consistency", "retry_free"}}
        for r in _records(frame)
    ]


def _run_facts(folder: Path, run_file: dict[str, Any], scores: Scores) -> RunFacts:
    frame = scores.attempts.frame
    suites = [_suite_fact(folder, str(name), scores) for name in run_file.get("suites") or {}]
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
                **_price_facts(price),
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


def _suite_fact(folder: Path, name: str, scores: Scores) -> SuiteFact:
    """What results.json says of one suite: its run copy's digest, targets, guards, prints."""
    copy = folder / "suites" / f"{name}.yaml"
    digest = hashlib.sha256(copy.read_bytes()).hexdigest() if copy.exists() else None
    tasks = scores.tasks[scores.tasks["suite"] == name]
    targets = {str(t): float(v) for t, v in zip(tasks["task"], tasks["target"], strict=True)}
    suite = scores.suites.get(name)  # loaded once by score_run; else read here
    if suite is None and copy.exists():
        suite = load_suite(copy)
    fingerprints, guards = _task_facts(suite) if suite is not None else ({}, {})
    return SuiteFact(
        name=name,
        sha256=digest,
        tasks=sorted(targets),
        targets=targets,
        guards=guards,
        fingerprints=fingerprints,
    )


def _price_facts(price: dict[str, Any] | None) -> dict[str, Any]:
    """A config's price as a model fact's fields (no price: litellm's price map)."""
    if not price:
        return {"price_per_mtok": None}
    per_mtok = ("input_per_mtok", "output_per_mtok")
    return {
        "price_per_mtok": {k: float(price.get(k, 0.0)) for k in per_mtok},
        "price_per_second": float(price.get("per_second", 0.0)) or None,
        "price_nominal": bool(price.get("nominal", False)),
    }


def _task_facts(suite: Suite) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Per task of `suite`: its fingerprints, and its production guards' labels — the task's,
    then those its cases' own validators add (as their verdicts label them)."""
    tasks = suite.tasks
    fingerprints = {task.id: task_fingerprints(task) for task in tasks}
    return fingerprints, {task.id: _guard_labels(task) for task in tasks}


def _guard_labels(task: Task) -> list[str]:
    """The task's production guards' labels, then those its cases' own validators add. A case
    without validators of its own has the task's guards: only the others are asked (a task
    of thousands of cases would otherwise derive its guards once per case)."""
    labels = dict.fromkeys(g.label for g in task.production_guards())
    for case in task.cases:
        if case.checks():
            labels.update(dict.fromkeys(g.label for g in task.guards_for(case)))
    return list(labels)


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
