"""Rank bands, the Pareto frontier and the recommendation: which model to ship on.

Reads the cells and comparisons of `margin.stats`; never the runner. A recommendation rests
only on decided cells: a model is recommended when it crosses the target on every task (within
the latency budget), never from an undecided cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from margin.results.rows import Recommendation, ShortfallRow
from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED


def rank_bands(rates: pd.Series, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per model (index of `rates`): `rank` = 1 + the models significantly better, and the
    models it is tied with (no significant difference either way)."""
    better: dict[str, set[str]] = {str(m): set() for m in rates.index}
    worse: dict[str, set[str]] = {str(m): set() for m in rates.index}
    for pair in pairs[pairs["significant"].astype(bool)].to_dict("records"):
        a, b = str(pair["model_a"]), str(pair["model_b"])
        winner, loser = (a, b) if float(pair["diff"]) > 0 else (b, a)
        better[loser].add(winner)
        worse[winner].add(loser)
    rows = []
    for model, rate in rates.items():
        name = str(model)
        others = [str(m) for m in rates.index if str(m) != name]
        tied = [m for m in others if m not in better[name] and m not in worse[name]]
        rows.append(
            {
                "model": name,
                "rank": 1 + len(better[name]),
                "rate": rate,
                "tied_with": ", ".join(tied),
            }
        )
    bands = pd.DataFrame(rows, columns=["model", "rank", "rate", "tied_with"])
    return bands.sort_values(["rank", "rate"], ascending=[True, False], kind="stable")


def pareto_frontier(models: pd.DataFrame) -> pd.Series:
    """Whether each model (row) is on the frontier over reliability (lower bound, higher is
    better), cost per 1,000 and p95 latency (lower is better): no other model is at least as
    good on all three and better on one. An unknown cost or latency counts as the worst."""
    low = models["low"].to_numpy(dtype=np.float64)
    cost = models["cost_per_1000"].fillna(np.inf).to_numpy(dtype=np.float64)
    latency = models["latency_p95"].fillna(np.inf).to_numpy(dtype=np.float64)
    on_frontier = []
    for i in range(len(models)):
        at_least = (low >= low[i]) & (cost <= cost[i]) & (latency <= latency[i])
        better = (low > low[i]) | (cost < cost[i]) | (latency < latency[i])
        on_frontier.append(not bool(np.any(at_least & better)))
    return pd.Series(on_frontier, index=models.index, name="frontier")


def recommend(
    tasks: pd.DataFrame,
    models: pd.DataFrame,
    conditions: pd.DataFrame,
    validators: pd.DataFrame,
    budgets: dict[tuple[str, str], float | None],
) -> Recommendation:
    """The cheapest model (by cost per 1,000, then p95 latency) that crosses the target on every
    task and keeps its p95 latency within each task's budget; the runner-up is the next."""
    shortfalls: dict[str, ShortfallRow] = {}
    for model, group in tasks.groupby("model", observed=True, sort=False):
        found = _shortfall(str(model), group, conditions, validators, budgets)
        if found is not None:
            shortfalls[str(model)] = found
    ordered = models.assign(
        cost=models["cost_per_1000"].fillna(np.inf), latency=models["latency_p95"].fillna(np.inf)
    ).sort_values(["cost", "latency"], kind="stable")
    eligible = [str(m) for m in ordered["model"] if str(m) not in shortfalls]
    closest = None
    if not eligible and not tasks.empty:
        worst = tasks.groupby("model", observed=True)["rate"].min().fillna(-1.0)
        closest = str(worst.idxmax())
    order = {str(m): i for i, m in enumerate(ordered["model"])}
    return Recommendation(
        model=eligible[0] if eligible else None,
        runner_up=eligible[1] if len(eligible) > 1 else None,
        eligible=eligible,
        closest=closest,
        shortfalls=sorted(shortfalls.values(), key=lambda s: order.get(s.model, 0)),
        undecided=int((tasks["verdict"] == UNDECIDED).sum()),
    )


def _shortfall(
    model: str,
    group: pd.DataFrame,
    conditions: pd.DataFrame,
    validators: pd.DataFrame,
    budgets: dict[tuple[str, str], float | None],
) -> ShortfallRow | None:
    """The first task where `model` falls short, else is undecided, else is too slow."""
    for status in (FALLS_SHORT, UNDECIDED):
        cells = group[group["verdict"] == status].sort_values("rate")
        if not cells.empty:
            return _describe(model, status, cells.iloc[0], conditions, validators)
    for row in group[group["verdict"] == CROSSES].to_dict("records"):
        budget = budgets.get((str(row["suite"]), str(row["task"])))
        latency = float(row["latency_p95"])
        if budget is not None and not latency <= budget:  # NaN latency: not shown to fit
            return ShortfallRow(
                model=model,
                status="too slow",
                task=f"{row['suite']}/{row['task']}",
                rate=float(row["rate"]),
                low=float(row["low"]),
                high=float(row["high"]),
                passes=int(row["passes"]),
                n=int(row["n"]),
                target=float(row["target"]),
                latency_p95=latency,
                budget_s=budget,
            )
    return None


def _describe(
    model: str, status: str, cell: pd.Series, conditions: pd.DataFrame, validators: pd.DataFrame
) -> ShortfallRow:
    suite, task = str(cell["suite"]), str(cell["task"])

    def same_cell(frame: pd.DataFrame) -> pd.DataFrame:
        same = (frame["model"] == model) & (frame["suite"] == suite) & (frame["task"] == task)
        return frame.loc[same]

    worst_condition = same_cell(conditions).query("n > 0").sort_values("rate", kind="stable")
    worst_validator = same_cell(validators).query("n > 0").sort_values("rate", kind="stable")
    condition = worst_condition.iloc[0] if not worst_condition.empty else None
    validator = worst_validator.iloc[0] if not worst_validator.empty else None
    more = cell.get("more_attempts")
    cases = cell.get("more_cases")
    return ShortfallRow(
        model=model,
        status=status,
        task=f"{cell['suite']}/{cell['task']}",
        rate=float(cell["rate"]),
        low=float(cell["low"]),
        high=float(cell["high"]),
        passes=int(cell["passes"]),
        n=int(cell["n"]),
        target=float(cell["target"]),
        condition=None if condition is None else str(condition["condition"]),
        condition_rate=None if condition is None else float(condition["rate"]),
        validator=None if validator is None else str(validator["validator"]),
        validator_rate=None if validator is None else float(validator["rate"]),
        more_attempts=None if more is None or pd.isna(more) else float(more),
        more_cases=None if cases is None or pd.isna(cases) else float(cases),
        latency_p95=float(cell["latency_p95"]),
    )
