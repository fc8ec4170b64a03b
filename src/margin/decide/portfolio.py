"""Product areas served whole by one model, and the per-feature mix against one model.

`features` decides each task on its own; a product area (a suite) is one feature set that a
single model must serve, and the mix is what shipping every feature on its own choice costs
per 1,000 product requests, weighted by traffic, beside the one-model-for-everything answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from margin.decide.features import Key, cost_key, feature_rows, fits, number, traffic_shares
from margin.results.feature_rows import AreaRow, FeatureRow, MixRow
from margin.results.policy_rows import PolicyRow
from margin.stats.intervals import CROSSES
from margin.stats.numbers import money, percent, seconds


@dataclass(frozen=True)
class Decisions:
    """The per-feature rows, the per-area rows and the mix."""

    features: list[FeatureRow]
    areas: list[AreaRow]
    mix: MixRow


def decide(
    tasks: pd.DataFrame,
    margins: pd.DataFrame,
    policies: Sequence[PolicyRow],
    budgets: Mapping[Key, float | None],
    traffic: Mapping[Key, float | None],
    attempts: pd.DataFrame,
    single_model: str | None,
    nominal: bool = False,
    order: Sequence[str] = (),
) -> Decisions:
    """Every decision of a scored run: `tasks` are its model × task cells, `margins` its
    margins per noise axis (with `drops_at`, `stats.drops.with_drops`), `attempts` its
    attempt frame (for the mix's latency), `order` the models' config order (ties; default:
    as they appear)."""
    order = list(dict.fromkeys([*order, *(str(m) for m in tasks["model"])]))
    keys = list(
        dict.fromkeys((str(s), str(t)) for s, t in zip(tasks["suite"], tasks["task"], strict=True))
    )
    shares = traffic_shares(keys, traffic)
    features = feature_rows(tasks, margins, policies, budgets, shares, order)
    areas = area_rows(tasks, budgets, shares, order)
    mix = mix_row(features, tasks, attempts, shares, single_model, nominal)
    return Decisions(features, areas, mix)


def area_rows(
    tasks: pd.DataFrame,
    budgets: Mapping[Key, float | None],
    shares: Mapping[Key, float],
    order: Sequence[str],
) -> list[AreaRow]:
    """Per suite: the cheapest model that crosses every one of its tasks within their budgets
    (cost weighted by the tasks' traffic), the runner-up, else the closest: the model that
    crosses most of them, then the one whose worst task has the highest lower bound."""
    rows = []
    for suite, cells in tasks.groupby("suite", observed=True, sort=False):
        count = cells[["suite", "task"]].drop_duplicates().shape[0]
        ranked = []
        for model, mine in cells.groupby("model", observed=True, sort=False):
            ok = [
                row["verdict"] == CROSSES
                and fits(number(row["latency_p95"]), budgets.get((str(suite), str(row["task"]))))
                for row in mine.to_dict("records")
            ]
            cost = _weighted_cost(mine, shares)
            worst = float(mine["low"].astype(float).min())
            ranked.append((sum(ok), cost, order.index(str(model)), str(model), worst))
        whole = sorted((r for r in ranked if r[0] == count), key=lambda r: (cost_key(r[1]), r[2]))
        # the closest: crosses the most tasks, then has the highest worst lower bound
        best = max(ranked, key=lambda r: (r[0], r[4], -r[2])) if ranked else None
        rows.append(_area(str(suite), count, whole, best))
    return rows


def _area(suite: str, count: int, whole: list, best: tuple | None) -> AreaRow:  # type: ignore[type-arg]
    tasks = f"{count} task{'s' if count != 1 else ''}"
    if whole:
        model, cost = whole[0][3], whole[0][1]
        every = "it" if count == 1 else f"all {count}"
        line = f"{suite} ({tasks}) → {model}: crosses {every}, {money(cost)} / 1,000"
        return AreaRow(suite=suite, tasks=count, model=model,
                       runner_up=whole[1][3] if len(whole) > 1 else None,
                       cost_per_1000=cost, closest=None, line=line)  # fmt: skip
    closest = best[3] if best else None
    every = "no model crosses it" if count == 1 else f"no one model crosses all {count}"
    line = f"{suite} ({tasks}) → {every}" + (
        f"; closest {closest}" + (f" crosses {best[0]} of {count}" if count > 1 else "")
        if best
        else ""
    )
    return AreaRow(suite=suite, tasks=count, model=None, runner_up=None, cost_per_1000=None,
                   closest=closest, line=line)  # fmt: skip


def mix_row(
    features: Sequence[FeatureRow],
    tasks: pd.DataFrame,
    attempts: pd.DataFrame,
    shares: Mapping[Key, float],
    single_model: str | None,
    nominal: bool,
) -> MixRow:
    """The per-feature mix's cost per 1,000 product requests and p95 over the features that
    have a choice, beside the single model's over every feature, at the same traffic."""
    covered = [f for f in features if f.choice is not None]
    weight = sum(f.traffic for f in covered)
    known = covered and all(f.cost_per_1000 is not None for f in covered) and weight > 0
    cost = sum(f.traffic * (f.cost_per_1000 or 0.0) for f in covered) / weight if known else None
    exact = all(f.kind == "model" for f in covered)
    if exact:
        picks = {(f.suite, f.task): str(f.choice) for f in covered}
        p95 = traffic_p95(attempts, picks, shares)
    else:
        p95 = max((f.latency_p95 for f in covered if f.latency_p95 is not None), default=None)
    single_cost = single_p95 = None
    if single_model is not None:
        mine = tasks[tasks["model"] == single_model]
        single_cost = _weighted_cost(mine, shares)
        single_p95 = traffic_p95(attempts, {k: single_model for k in shares}, shares)
    row = MixRow(features=len(features), covered=len(covered), cost_per_1000=cost,
                 latency_p95=p95, latency_p95_exact=exact, single_model=single_model,
                 single_cost_per_1000=single_cost, single_latency_p95=single_p95,
                 nominal=nominal, line="")  # fmt: skip
    return row.model_copy(update={"line": mix_words(row, weight)})


def mix_words(mix: MixRow, weight: float) -> str:
    """The mix against the single model, in one line."""
    scope = (
        "every feature"
        if mix.covered == mix.features
        else f"the {mix.covered} of {mix.features} features with a choice"
        f" ({percent(weight)} of requests)"
    )
    bound = "" if mix.latency_p95_exact else " at most"
    mixed = (
        f"Each feature on its own choice: {money(mix.cost_per_1000)} per 1,000 requests over"
        f" {scope}, p95{bound} {seconds(mix.latency_p95)}"
    )
    single = (
        f"one model for everything ({mix.single_model}): {money(mix.single_cost_per_1000)}"
        f" per 1,000, p95 {seconds(mix.single_latency_p95)}"
        if mix.single_model
        else "no single model crosses every feature"
    )
    nominal = " (nominal prices)" if mix.nominal else ""
    return f"{mixed}; {single}{nominal}."


def traffic_p95(
    attempts: pd.DataFrame, picks: Mapping[Key, str], shares: Mapping[Key, float]
) -> float | None:
    """The p95 latency of product requests when each task `picks` its model: the quantile of
    the judged attempts' latencies, each task's weighted by its traffic share."""
    values, weights = [], []
    judged = attempts[attempts["judged"]] if "judged" in attempts else attempts
    for (suite, task), model in picks.items():
        mine = judged[(judged["suite"] == suite) & (judged["task"] == task)]
        seen = mine.loc[mine["model"] == model, "latency_s"].dropna().to_numpy(dtype=float)
        if len(seen) and shares.get((suite, task), 0.0) > 0:
            values.append(seen)
            weights.append(np.full(len(seen), shares[(suite, task)] / len(seen)))
    if not values:
        return None
    return weighted_quantile(np.concatenate(values), np.concatenate(weights), 0.95)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose weighted cumulative share reaches `q` (the inverted CDF)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1] - 1e-12, side="left"))
    return float(values[order][min(index, len(values) - 1)])


def _weighted_cost(cells: pd.DataFrame, shares: Mapping[Key, float]) -> float | None:
    """Dollars per 1,000 requests of `cells`' tasks, weighted by their traffic shares."""
    weights = [
        shares.get((str(s), str(t)), 0.0)
        for s, t in zip(cells["suite"], cells["task"], strict=True)
    ]
    costs = cells["cost_per_1000"].astype(float).to_numpy()
    total = float(np.sum(weights))
    if total <= 0 or np.isnan(costs).any():
        return None
    return float(np.dot(weights, costs) / total)


def task_keys(cells: pd.DataFrame) -> list[Key]:
    """The (suite, task) of each row."""
    return [(str(s), str(t)) for s, t in zip(cells["suite"], cells["task"], strict=True)]
