"""The recommendation in words: what `margin run` ends with and `margin score` begins with."""

from __future__ import annotations

from typing import Any

import pandas as pd

from margin.decide.scores import Scores
from margin.results.feature_rows import AreaRow, FeatureRow, MixRow
from margin.results.rows import ShortfallRow
from margin.stats.intervals import FALLS_SHORT, UNDECIDED
from margin.stats.numbers import money, more_cases_text, rate_with_interval, seconds
from margin.stats.phrases import silent_text, task_verdicts_text, undetectable_text


def model_lines(scores: Scores) -> list[str]:
    """One line per model, best rank band first: reliability with n and interval, verdict."""
    lines = []
    ordered = scores.models.sort_values(["rank", "rate"], ascending=[True, False], kind="stable")
    for row in ordered.to_dict("records"):
        rate = rate_with_interval(
            int(row["passes"]), int(row["n"]), float(row["low"]), float(row["high"])
        )
        tied = f", tied with {row['tied_with']}" if row["tied_with"] else ""
        lines.append(
            f"{row['model']}: {rate} over all tasks (rank {row['rank']}{tied});"
            f" {task_verdicts_text(verdicts_of(scores.tasks, str(row['model'])))};"
            f" silent failures {_silent(row)}; {row['infra_errors']} infra errors"
        )
    return lines


def verdicts_of(tasks: pd.DataFrame, model: str) -> list[str]:
    """Each task's verdict for `model`, from a tasks table."""
    return [str(v) for v in tasks.loc[tasks["model"] == model, "verdict"]]


def task_lines(scores: Scores) -> list[str]:
    """One line per task: each model's verdict against the task's target, best rank first."""
    lines = []
    for (suite, task), group in scores.tasks.groupby(["suite", "task"], observed=True, sort=False):
        target = float(group["target"].iloc[0])
        ordered = group.sort_values(["rank", "rate"], ascending=[True, False], kind="stable")
        parts = [
            f"{row['model']} {row['verdict']} "
            + rate_with_interval(
                int(row["passes"]), int(row["n"]), float(row["low"]), float(row["high"])
            )
            for row in ordered.to_dict("records")
        ]
        lines.append(f"{suite}/{task} (target {target:g}): " + "; ".join(parts))
    return lines


def recommendation_lines(scores: Scores) -> list[str]:
    """The answer first, then the runner-up, then where every other model falls short."""
    rec = scores.recommendation
    models = {str(row["model"]): row for row in scores.models.to_dict("records")}
    lines: list[str] = []
    if rec.model is not None:
        lines.append(f"Recommended: {rec.model} — {_model_figures(models[rec.model])}.")
        if rec.runner_up is not None:
            lines.append(f"Runner-up: {rec.runner_up} — {_model_figures(models[rec.runner_up])}.")
        else:
            lines.append("Runner-up: none — no other model crosses every task.")
    elif scores.tasks.empty:
        return ["No judged attempts yet: nothing to recommend."]
    else:
        target = _targets_text(scores.tasks)
        lines.append(f"No model crosses {target} on every task: nothing is recommended.")
        if rec.closest is not None:
            closest = next((s for s in rec.shortfalls if s.model == rec.closest), None)
            where = f" (worst: {_shortfall_text(closest, scores)})" if closest is not None else ""
            lines.append(f"Closest: {rec.closest}{where}.")
    for shortfall in rec.shortfalls:
        if shortfall.model != rec.closest or rec.model is not None:
            lines.append(f"{shortfall.model}: {_shortfall_text(shortfall, scores)}.")
    undecided = scores.tasks[scores.tasks["verdict"] == UNDECIDED]
    if not undecided.empty:
        lines.append(
            f"Undecided: {len(undecided)} model × task cell(s); new cases would settle them:"
        )
        for row in undecided.sort_values("more_cases").to_dict("records"):
            lines.append(f"  {row['model']} on {row['suite']}/{row['task']}: {_more_text(row)}")
    return lines


def _model_figures(row: dict[Any, Any]) -> str:
    overall = rate_with_interval(
        int(row["passes"]), int(row["n"]), float(row["low"]), float(row["high"])
    )
    cost, p95 = money(float(row["cost_per_1000"])), seconds(float(row["latency_p95"]))
    silent = undetectable_text(
        row.get("silent"), row.get("guarded_n"), row.get("silent_low"), row.get("silent_high")
    )
    return f"crosses every task; overall {overall}, {cost} per 1,000 tasks, p95 {p95}; {silent}"


def _silent(row: dict[Any, Any]) -> str:
    """A model's or task's silent failures: `3/250 1.2% [0.3, 4.1]` (scored row)."""
    return silent_text(
        row.get("silent"), row.get("guarded_n"), row.get("silent_low"), row.get("silent_high")
    )


def _targets_text(tasks: pd.DataFrame) -> str:
    targets = sorted(set(tasks["target"].round(4)))
    return (
        f"its target ({', '.join(f'{t:g}' for t in targets)})"
        if len(targets) > 1
        else f"{targets[0]:g}"
    )


def _shortfall_text(s: ShortfallRow, scores: Scores) -> str:
    if s.status == "too slow":
        return (
            f"too slow on {s.task}: p95 {seconds(s.latency_p95)} > budget {seconds(s.budget_s)}"
            f" (it crosses {s.target:g})"
        )
    text = (
        f"{s.status} on {s.task}: {rate_with_interval(s.passes, s.n, s.low, s.high)}"
        f" {'<' if s.status == FALLS_SHORT else 'straddles'} {s.target:g}"
    )
    if s.condition is not None:
        text += f"; worst condition {s.condition}"
        text += _part_rate(scores.conditions, s, "condition", s.condition)
    if s.validator is not None:
        text += f"; breaks first: {s.validator}"
        text += _part_rate(scores.validators, s, "validator", s.validator)
    return text


def _part_rate(table: pd.DataFrame, s: ShortfallRow, column: str, name: str) -> str:
    """` (3/5 60.0% [23.0, 88.2])`: the rate of the shortfall's worst condition or validator on
    its task, with n and interval (empty if the table has no such judged cell)."""
    cell = f"{s.model}|{s.task}|{name}"
    keys = table["model"].astype(str) + "|" + table["suite"].astype(str) + "/"
    keys = keys + table["task"].astype(str) + "|" + table[column].astype(str)
    rows = table[(keys == cell) & (table["n"] > 0)].to_dict("records")
    if not rows:
        return ""
    row = rows[0]
    rate = rate_with_interval(
        int(row["passes"]), int(row["n"]), float(row["low"]), float(row["high"])
    )
    return f" ({rate})"


def _more_text(row: dict[Any, Any]) -> str:
    """How many new cases (one attempt each) would settle the cell with an 80% chance at its
    current rate; more repeats of its cases are not offered when they agree (deff > 1)."""
    n, passes = int(str(row["n"])), int(str(row["passes"]))
    now = rate_with_interval(passes, n, float(str(row["low"])), float(str(row["high"])))
    more = row.get("more_cases")
    count = more_cases_text(None if more is None else float(str(more)))
    if more is not None and more == more and float(str(row["deff"])) > 1.01:
        return f"{now}; {count}; its repeats agree: more of them add little"
    return f"{now}; {count}"


def decision_lines(
    features: list[FeatureRow], areas: list[AreaRow], mix: MixRow | None
) -> list[str]:
    """The decision per feature in words, first thing `margin run` and `margin score` print:
    one line per feature, the mix against one model, and the product areas."""
    if not features:
        return []
    lines = ["Decision per feature:", *(f"  {f.line}" for f in features)]
    if mix is not None:
        lines.append(mix.line)
    lines.extend(f"  {a.line}" for a in areas)
    return lines
