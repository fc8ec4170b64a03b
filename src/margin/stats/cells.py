"""Cells: the attempts of one model × task × condition, pooled model × task, and model overall.

Every cell carries its pass rate with a 95% interval that respects clustering by case (repeats,
paraphrases and noise variants of one case are not independent evidence), its n, its infra
errors beside it, a verdict against its target, and for an undecided cell how many more
attempts would settle it at the current rate and clustering (`more_attempts`: about half the time)
and how many new single-attempt cases would settle it with an 80% chance (`more_cases`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from margin.stats.intervals import (
    CROSSES,
    FALLS_SHORT,
    UNDECIDED,
    design_effect,
    effective_n_to_decide,
    pass_at_k,
    pass_hat_k,
    rate_interval,
    verdicts,
)
from margin.stats.settle import more_cases

CONDITION = ["model", "suite", "task", "condition"]
TASK = ["model", "suite", "task"]
MODEL = ["model"]
CASE = ["suite", "task", "case"]
MAX_MORE_ATTEMPTS = 10**7
"""Beyond this, an undecided cell is reported as not decidable at its current rate."""

Targets = Mapping[tuple[str, str], float]
"""The reliability target of each (suite, task)."""


def case_counts(frame: pd.DataFrame, keys: list[str], value: str = "passed") -> pd.DataFrame:
    """Per cell and case: judged attempts `n` and passes `c` (infra errors excluded)."""
    judged = frame[frame["judged"]] if "judged" in frame else frame
    counts = group_sums(judged, [*keys, *[k for k in CASE if k not in keys]], {value: "c"})
    return counts[counts["n"] > 0]


def group_sums(frame: pd.DataFrame, by: list[str], sums: dict[str, str]) -> pd.DataFrame:
    """Per group of `by` (observed, in order of first appearance): its rows `n` and the sum of
    each column of `sums` under its new name. Built from the groups' index and arrays: a
    named `agg` of the same costs several times as much, and this runs a dozen times a score."""
    group = frame.groupby(by, observed=True, sort=False)
    sizes = group.size()
    totals = group[list(sums)].sum()
    out = sizes.index.to_frame(index=False)
    out["n"] = sizes.to_numpy()
    for name, label in sums.items():
        out[label] = totals[name].to_numpy()
    return out


def interval_table(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per cell, from case counts: n, passes, rate, cases, design effect, effective n, interval,
    consistency (share of cases whose attempts all agree) and retry-free coverage (share of
    cases that pass every attempt)."""
    return interval_tables(counts, keys, ["c"])[0]


def interval_tables(counts: pd.DataFrame, keys: list[str], values: list[str]) -> list[pd.DataFrame]:
    """`interval_table` with each column of `values` of the case counts as the passes, from one
    groupby (the cells, their n and cases are the same). Each frame is built whole, not column
    by column: this runs about a dozen times per scoring, on tables of a row per case."""
    n = counts["n"].to_numpy(np.float64)
    parts = {
        "n": n,
        "cases": np.ones(len(n), np.int64),
        "sq_size": n * n,
        "repeated": (n > 1).astype(np.float64),
    }
    for i, value in enumerate(values):
        c = counts[value].to_numpy(np.float64)
        parts[f"passes{i}"] = c
        parts[f"sq_share{i}"] = c * c / n
        parts[f"agree{i}"] = ((c == 0) | (c == n)).astype(np.float64)
        parts[f"all_pass{i}"] = (c == n).astype(np.float64)
    group = pd.DataFrame(parts, index=counts.index).groupby(
        [counts[k] for k in keys], observed=True, sort=False
    )
    cells = group.sum().reset_index()
    return [_cell_intervals(cells, keys, i) for i in range(len(values))]


def _cell_intervals(cells: pd.DataFrame, keys: list[str], i: int) -> pd.DataFrame:
    """The interval table of the `i`-th passes of `interval_tables`' summed cells."""
    total, passes, cases = cells["n"], cells[f"passes{i}"], cells["cases"]
    deff = design_effect(total, passes, cases, cells["sq_size"], cells[f"sq_share{i}"])
    rate = passes / total
    low, high = rate_interval(rate * total / deff, total / deff)
    repeated = cells["repeated"] > 0
    return pd.DataFrame(
        {
            **{k: cells[k] for k in keys},
            "n": total.astype(np.int64),
            "passes": passes.astype(np.int64),
            "cases": cases,
            "rate": rate,
            "low": low,
            "high": high,
            "deff": deff,
            "n_eff": total / deff,
            "consistency": (cells[f"agree{i}"] / cases).where(repeated),
            "retry_free": (cells[f"all_pass{i}"] / cases).where(repeated),
        }
    )


def decide(cells: pd.DataFrame, target: pd.Series) -> pd.DataFrame:
    """Add `target`, `verdict` and, for undecided cells, `more_attempts`: about how many more
    attempts (at the current rate and clustering) would put the interval around the current rate
    off the target, a coin flip's chance to settle it; and `more_cases`: how many new cases of
    one attempt each settle it with an 80% chance at the current rate (`stats.settle`). NaN when
    none would (the rate sits on the target)."""
    verdict = verdicts(cells["low"], cells["high"], target)
    needed = effective_n_to_decide(cells["rate"], target) * cells["deff"]
    more = np.ceil(needed - cells["n"]).clip(lower=1)
    more = more.where((verdict == UNDECIDED) & (more <= MAX_MORE_ATTEMPTS))
    cases = more_cases(cells["passes"], cells["n"], cells["deff"], target, verdict == UNDECIDED)
    return cells.assign(
        target=target.to_numpy(), verdict=verdict, more_attempts=more, more_cases=cases
    )


def cell_table(
    frame: pd.DataFrame, keys: list[str], targets: Targets, tasks: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every cell at the level `keys` (CONDITION, TASK or MODEL) with its rate, interval,
    verdict, partial credit, latency, cost and tokens. At MODEL level the target is the highest
    task target the model ran, and the verdict is the tasks': crosses when every task crosses,
    falls short when one does, else undecided (`tasks`: the TASK-level table, if already made)."""
    cells = interval_table(case_counts(frame, keys), keys)
    unscored = (frame["error"] == "Unscored").fillna(False).to_numpy(dtype=bool)
    marks = frame.assign(infra=~frame["judged"] & ~unscored, unscored=unscored)
    group = marks.groupby(keys, observed=True, sort=False)
    judged = frame[frame["judged"]].groupby(keys, observed=True, sort=False)
    extra = pd.DataFrame(
        {
            "attempts": group.size(),
            "infra_errors": group["infra"].sum(),
            "unscored": group["unscored"].sum(),
            "judge_cost_per_1000": group["judge_cost_usd"].mean() * 1000,
            "partial": judged["partial"].mean(),
            "latency_p50": judged["latency_s"].quantile(0.5),
            "latency_p95": judged["latency_s"].quantile(0.95),
            "cost_per_1000": judged["cost_usd"].mean() * 1000
            + judged["cost_saved_usd"].mean() * 1000,
            "cost_known": judged["cost_usd"].count() == judged.size(),
            "spent_usd": group["cost_usd"].sum(),
            "input_tokens": judged["input_tokens"].mean(),
            "output_tokens": judged["output_tokens"].mean(),
            "truncated": judged["truncated"].sum(),
            "over_max_tokens": judged["over_max_tokens"].sum(),
            "cache_hits": group["cache_hit"].sum(),
        }
    ).reset_index()
    extra["cost_per_1000"] = extra["cost_per_1000"].where(extra["cost_known"])
    if "condition" in keys:
        firsts = group[["paraphrase", "noise_kind", "noise_level"]].first().reset_index()
        extra = extra.merge(firsts, on=keys, how="left")
    table = extra.merge(cells, on=keys, how="left").drop(columns=["cost_known"])
    table = table.merge(failure_table(frame, keys), on=keys, how="left")
    filled = {name: table[name].fillna(value) for name, value in _EMPTY_CELL.items()}
    counts = {name: filled.get(name, table[name]).astype(np.int64) for name in _COUNTS}
    table = table.assign(**{**filled, **counts})  # one assignment, not a frame per step
    if keys == MODEL:
        return _model_verdicts(
            table, tasks if tasks is not None else cell_table(frame, TASK, targets)
        )
    target = pd.Series(
        [targets[(str(s), str(t))] for s, t in zip(table["suite"], table["task"], strict=True)],
        index=table.index,
        dtype=np.float64,
    )
    return decide(table, target)


_EMPTY_CELL = {"n": 0, "passes": 0, "cases": 0, "truncated": 0, "over_max_tokens": 0,
               "deff": 1.0, "n_eff": 0.0, "low": 0.0, "high": 1.0}  # fmt: skip
"""What a cell without judged attempts shows."""
_COUNTS = ["n", "passes", "cases", "infra_errors", "unscored", "truncated", "over_max_tokens",
           "cache_hits"]  # fmt: skip


FAILURES = ["guarded_n", "detected", "detected_low", "detected_high",
            "silent", "silent_low", "silent_high"]  # fmt: skip
"""The columns `failure_table` adds to every cell."""


def failure_table(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per cell, its failures split by what production's guards saw: `detected` (some guard
    failed: production can retry or refuse) and `silent` (every guard passed, a reference
    check failed: the wrong answer reaches the user), counts of `guarded_n` (the judged
    attempts whose guard outcome is recorded; journals before version 4 have none) with the
    interval of each rate, clustered by case like the pass rate's."""
    known = frame[frame["judged"] & frame["guarded"].notna()] if "guarded" in frame else frame[:0]
    if known.empty:
        return pd.DataFrame(columns=[*keys, *FAILURES])
    failed = known["passed"] == 0
    by_case = [*keys, *[k for k in CASE if k not in keys]]
    split = known[by_case].assign(
        detected=(failed & (known["guarded"] == 0)).astype(np.float64),
        silent=(failed & (known["guarded"] == 1)).astype(np.float64),
    )
    kinds = {"detected": "detected", "silent": "silent"}
    counts = group_sums(split, by_case, kinds)  # `case_counts` of both at once
    counts = counts[counts["n"] > 0]
    detected, silent = interval_tables(counts, keys, list(kinds))  # same cells, same order
    return pd.DataFrame(
        {
            **{k: detected[k] for k in keys},
            "guarded_n": detected["n"],
            **{f"{kind}{end}": table[column]
               for kind, table in (("detected", detected), ("silent", silent))
               for end, column in (("", "passes"), ("_low", "low"), ("_high", "high"))},
        }
    )  # fmt: skip


def _model_verdicts(table: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for model, group in tasks.groupby("model", observed=True, sort=False):
        states = set(group["verdict"])
        verdict = (
            CROSSES if states == {CROSSES} else FALLS_SHORT if FALLS_SHORT in states else UNDECIDED
        )
        rows.append({"model": model, "target": group["target"].max(), "verdict": verdict})
    summary = pd.DataFrame(rows, columns=["model", "target", "verdict"])
    table = table.merge(summary, on="model", how="left")
    return table.assign(more_attempts=np.nan, more_cases=np.nan)


def pass_k_table(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """pass^k and pass@k for k = 1..the run's repeats, per cell: each case's C(c, k)/C(n, k)
    over its attempts in the cell, averaged over the cases with at least k attempts."""
    counts = case_counts(frame, keys)
    if counts.empty:
        return pd.DataFrame(columns=[*keys, "k", "cases", "pass_hat_k", "pass_at_k"])
    parts = []
    repeats = int(frame["repeat"].max()) + 1
    for k in range(1, min(repeats, int(counts["n"].max())) + 1):
        have = counts[counts["n"] >= k]
        values = have[keys].assign(
            k=k,
            cases=1,
            pass_hat_k=pass_hat_k(have["c"], have["n"], k),
            pass_at_k=pass_at_k(have["c"], have["n"], k),
        )
        group = values.groupby([*keys, "k"], observed=True, sort=False)
        parts.append(
            group.agg(
                cases=("cases", "sum"),
                pass_hat_k=("pass_hat_k", "mean"),
                pass_at_k=("pass_at_k", "mean"),
            ).reset_index()
        )
    return pd.concat(parts, ignore_index=True)


def validator_table(
    frame: pd.DataFrame, verdicts_frame: pd.DataFrame, keys: list[str], targets: Targets
) -> pd.DataFrame:
    """Each validator's pass rate per cell at level `keys` (with its interval and verdict
    against the task's target): which constraint breaks first, and under which condition."""
    columns = sorted(set(keys) | set(CASE), key=[*keys, *CASE].index)
    rows = frame[columns].iloc[verdicts_frame["row"].to_numpy()].reset_index(drop=True)
    checks = rows.assign(
        validator=verdicts_frame["validator"].to_numpy(),
        passed=verdicts_frame["passed"].to_numpy().astype(np.float64),
        judged=True,
    )
    cell_keys = [*keys, "validator"]
    table = interval_table(case_counts(checks, cell_keys), cell_keys)
    target = pd.Series(
        [targets[(str(s), str(t))] for s, t in zip(table["suite"], table["task"], strict=True)],
        index=table.index,
        dtype=np.float64,
    )
    return decide(table, target)
