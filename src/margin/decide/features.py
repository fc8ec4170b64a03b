"""Which model each feature ships on: a decision per task, per product area, and the mix's cost.

"Which model should this feature ship on?" is asked per feature. For each task: the cheapest
model (by cost per 1,000 requests, then p95 latency, then the config's order) whose verdict
crosses the task's target and whose p95 fits its latency budget; where no bare model does, the
cheapest delivery policy whose estimate follows the guards and whose lower bound reaches the
target; else none, with the closest model and what evidence would decide it. A product area
(suite) is served whole by one model: the cheapest that crosses every one of its tasks. The
mix (each feature on its own choice) is costed per 1,000 product requests, weighted by each
task's `traffic`, beside the one-model-for-everything answer. Never from undecided evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from margin.results.feature_rows import FeatureMargin, FeatureRow
from margin.results.policy_rows import PolicyRow
from margin.stats.intervals import CROSSES, UNDECIDED
from margin.stats.numbers import interval, money, more_cases_text, percent, seconds
from margin.stats.numbers import rate_with_interval as counted
from margin.stats.phrases import silent_text

Key = tuple[str, str]
Cell = dict[str, Any]
"""A task cell as a record (`DataFrame.to_dict("records")`)."""


def traffic_shares(keys: Sequence[Key], traffic: Mapping[Key, float | None]) -> dict[Key, float]:
    """Each task's share of product requests: its `traffic` (a share or a volume) normalised;
    a task without one gets the mean of those given (1 when none is), so unset means equal."""
    given = [float(v) for k in keys if (v := traffic.get(k)) is not None]
    default = float(np.mean(given)) if given else 1.0
    raw = {k: float(traffic.get(k) or default) for k in keys}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()} if total > 0 else {}


def cheapest_first(cells: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Cells by cost per 1,000 (unknown last), p95 latency, then the config's model order."""
    rank = {name: i for i, name in enumerate(order)}
    return cells.assign(
        _cost=cells["cost_per_1000"].astype(float).fillna(np.inf),
        _p95=cells["latency_p95"].astype(float).fillna(np.inf),
        _order=[rank.get(str(m), len(rank)) for m in cells["model"]],
    ).sort_values(["_cost", "_p95", "_order"], kind="stable")


def fits(latency_p95: float | None, budget: float | None) -> bool:
    """Whether a p95 fits a budget (an unmeasured p95 is not shown to fit one)."""
    if budget is None:
        return True
    return latency_p95 is not None and latency_p95 == latency_p95 and latency_p95 <= budget


def crossing_models(cells: pd.DataFrame, budget: float | None, order: Sequence[str]) -> list[Cell]:
    """The task's cells that cross within the budget, cheapest first."""
    crossing = cells[cells["verdict"] == CROSSES]
    ordered: list[Cell] = [
        {str(k): v for k, v in row.items()}
        for row in cheapest_first(crossing, order).to_dict("records")
    ]
    return [c for c in ordered if fits(number(c.get("latency_p95")), budget)]


def crossing_policies(
    policies: Sequence[PolicyRow], key: Key, target: float, budget: float | None
) -> list[PolicyRow]:
    """The task's policy estimates that follow the guards, whose lower bound reaches the target
    within the budget, cheapest first (never an oracle's upper bound)."""
    usable = [
        p
        for p in policies
        if (p.suite, p.task) == key
        and not p.oracle
        and p.upper_bound is None
        and p.low >= target
        and fits(p.latency_p95, budget)
    ]
    return sorted(usable, key=lambda p: (cost_key(p.cost_per_1000), cost_key(p.latency_p95)))


def feature_margins(margins: pd.DataFrame, model: str, key: Key) -> list[FeatureMargin]:
    """The chosen model's margin on each noise axis of the task, with the first level at
    which its reliability drops significantly (`drops_at`, when the table has it)."""
    mine = margins[(margins["model"] == model) & (margins["suite"] == key[0])]
    mine = mine[mine["task"] == key[1]]
    return [
        FeatureMargin(
            axis=str(row["axis"]),
            margin=number(row["margin"]),
            status=str(row["status"]),
            breaks_at=number(row["breaks_at"]),
            drops_at=number(row.get("drops_at")),
        )
        for row in mine.to_dict("records")
    ]


def margin_words(margins: Sequence[FeatureMargin]) -> str:
    """`holds to typos@0.1 (drops from 0.2)`, per axis."""
    parts = []
    for m in margins:
        if m.status == "beyond":
            held = f"holds at every {m.axis} level tried (to {m.margin:g})"
        elif m.margin is None:
            held = f"{m.axis}: no margin decided"
        elif m.margin == 0:
            held = f"{m.axis}: crosses clean only (breaks at {m.breaks_at:g})"
        else:
            held = f"holds to {m.axis}@{m.margin:g}"
        drop = f", drops significantly from {m.drops_at:g}" if m.drops_at is not None else ""
        parts.append(held + drop)
    return "; ".join(parts)


def number(value: object) -> float | None:
    """A table value as a float, None when missing or NaN."""
    if value is None:
        return None
    as_float = float(value)  # type: ignore[arg-type]
    return None if as_float != as_float else as_float


def cost_key(value: float | None) -> float:
    """A cost or latency to sort by: a missing one last."""
    return np.inf if value is None or value != value else float(value)


def model_feature(
    base: Cell, chosen: Cell, runner: Cell | None, margins: list[FeatureMargin]
) -> FeatureRow:
    """The row of a feature that ships on a bare model."""
    silent = silent_text(
        chosen.get("silent"), chosen.get("guarded_n"), chosen.get("silent_low"),
        chosen.get("silent_high"),
    )  # fmt: skip
    rate = counted(int(chosen["passes"]), int(chosen["n"]), chosen["low"], chosen["high"])
    words = margin_words(margins)
    line = (
        f"{base['suite']}/{base['task']} → {chosen['model']}: {rate} crosses {base['target']:g};"
        f" {money(number(chosen['cost_per_1000']))} / 1,000, p95"
        f" {seconds(number(chosen['latency_p95']))}; silent {silent}"
        + (f"; {words}" if words else "")
        + (f"; runner-up {runner['model']}" if runner else "")
    )
    return FeatureRow(
        **base,
        kind="model",
        choice=str(chosen["model"]),
        passes=int(chosen["passes"]),
        n=int(chosen["n"]),
        rate=number(chosen["rate"]),
        low=float(chosen["low"]),
        high=float(chosen["high"]),
        cost_per_1000=number(chosen["cost_per_1000"]),
        latency_p95=number(chosen["latency_p95"]),
        silent=None if number(chosen.get("silent")) is None else int(chosen["silent"]),
        guarded_n=None if number(chosen.get("guarded_n")) is None else int(chosen["guarded_n"]),
        silent_rate=_silent_rate(chosen),
        silent_low=number(chosen.get("silent_low")),
        silent_high=number(chosen.get("silent_high")),
        margins=margins,
        runner_up=None if runner is None else str(runner["model"]),
        runner_up_cost_per_1000=None if runner is None else number(runner["cost_per_1000"]),
        line=line,
    )


def _silent_rate(cell: Cell) -> float | None:
    silent, n = number(cell.get("silent")), number(cell.get("guarded_n"))
    return None if silent is None or not n else silent / n


def policy_feature(base: Cell, chosen: PolicyRow, runner: PolicyRow | None) -> FeatureRow:
    """The row of a feature no bare model serves that a delivery policy does."""
    silent = "not recorded"
    if chosen.silent is not None:
        bounds = interval(chosen.silent_low or 0.0, chosen.silent_high or 1.0)
        silent = f"{percent(chosen.silent)} {bounds}"
    line = (
        f"{base['suite']}/{base['task']} → {chosen.policy} (no bare model crosses): estimated"
        f" {percent(chosen.rate)} {interval(chosen.low, chosen.high)} over {chosen.cases} cases,"
        f" crosses {base['target']:g}; {money(chosen.cost_per_1000)} / 1,000, p95"
        f" {seconds(chosen.latency_p95)}; silent {silent}"
    )
    return FeatureRow(
        **base,
        kind="policy",
        choice=chosen.policy,
        rate=chosen.rate,
        low=chosen.low,
        high=chosen.high,
        cost_per_1000=chosen.cost_per_1000,
        latency_p95=chosen.latency_p95,
        silent_rate=chosen.silent,
        silent_low=chosen.silent_low,
        silent_high=chosen.silent_high,
        runner_up=None if runner is None else runner.policy,
        runner_up_cost_per_1000=None if runner is None else runner.cost_per_1000,
        line=line,
    )


def no_feature(base: Cell, cells: pd.DataFrame) -> FeatureRow:
    """The row of a feature nothing serves: the closest model and what would decide it."""
    head = f"{base['suite']}/{base['task']} → none crosses {base['target']:g}"
    if cells.empty:
        return FeatureRow(**base, kind="none", choice=None, line=f"{head}: no judged attempts")
    closest = cells.sort_values(["low", "rate"], ascending=False, kind="stable").iloc[0]
    verdict = str(closest["verdict"])
    more = number(closest.get("more_cases")) if verdict == UNDECIDED else None
    rate = counted(int(closest["passes"]), int(closest["n"]), closest["low"], closest["high"])
    tail = f"; {more_cases_text(more)} would decide it" if verdict == UNDECIDED else ""
    if verdict == CROSSES:
        tail = "; it crosses but not within the latency budget"
    return FeatureRow(
        **base,
        kind="none",
        choice=None,
        closest=str(closest["model"]),
        closest_verdict=verdict,
        closest_passes=int(closest["passes"]),
        closest_n=int(closest["n"]),
        closest_low=float(closest["low"]),
        closest_high=float(closest["high"]),
        more_cases=more,
        line=f"{head}; closest {closest['model']} {rate} {verdict}{tail}",
    )


def feature_rows(
    tasks: pd.DataFrame,
    margins: pd.DataFrame,
    policies: Sequence[PolicyRow],
    budgets: Mapping[Key, float | None],
    shares: Mapping[Key, float],
    order: Sequence[str],
) -> list[FeatureRow]:
    """Every task's decision, in the order the tasks first appear."""
    rows = []
    for (suite, task), cells in tasks.groupby(["suite", "task"], observed=True, sort=False):
        key = (str(suite), str(task))
        budget = budgets.get(key)
        target = float(cells["target"].iloc[0])
        base = {"suite": key[0], "task": key[1], "target": target,
                "traffic": shares.get(key, 0.0), "budget_s": budget}  # fmt: skip
        models = crossing_models(cells, budget, order)
        if models:
            runner = models[1] if len(models) > 1 else None
            mine = feature_margins(margins, str(models[0]["model"]), key)
            rows.append(model_feature(base, models[0], runner, mine))
            continue
        systems = crossing_policies(policies, key, target, budget)
        if systems:
            rows.append(policy_feature(base, systems[0], systems[1] if len(systems) > 1 else None))
        else:
            rows.append(no_feature(base, cells[cells["n"] > 0]))
    return rows
