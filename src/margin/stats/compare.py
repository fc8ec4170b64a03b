"""Paired comparison of models on the same attempts, and rank bands that show ties as ties.

Two models are compared on the attempts both were judged on with the same key (suite, task,
case, variant, repeat): every model saw the identical prompt, so the comparison is paired. The
test is the mid-p McNemar test on the discordant pairs, after dividing the counts by the design
effect of the paired difference clustered by case (at temperature 0 the repeats of a case are
copies, not new evidence). Holm's correction runs across the pairs of one scope.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from margin.stats.frame import ITEM
from margin.stats.intervals import design_effect, mcnemar_mid_p, paired_difference_interval

ALPHA = 0.05
PAIR_COLUMNS = [
    "model_a", "model_b", "pairs", "both", "only_a", "only_b", "neither", "rate_a", "rate_b",
    "diff", "low", "high", "deff", "p_value", "p_holm", "significant",
]  # fmt: skip


def outcome_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Judged outcomes (1.0 / 0.0) with one row per attempt key and one column per model."""
    judged = frame[frame["judged"]]
    matrix = judged.pivot_table(
        index=ITEM, columns="model", values="passed", aggfunc="first", observed=True
    )
    matrix.columns = [str(c) for c in matrix.columns]
    return matrix


def compare_pairs(matrix: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Every two models of `matrix`: counts, the difference in pass rate with its interval, the
    mid-p McNemar p-value, Holm's adjusted p-value and whether it is significant at `alpha`."""
    models = list(matrix.columns)
    cases = _case_codes(matrix)
    rows = [
        _pair(matrix[a].to_numpy(), matrix[b].to_numpy(), cases, a, b)
        for a, b in combinations(models, 2)
    ]
    table = pd.DataFrame(rows, columns=PAIR_COLUMNS[:-2])
    if table.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    adjusted = holm(table["p_value"].to_numpy())
    return table.assign(p_holm=adjusted, significant=(adjusted <= alpha) & (table["pairs"] > 0))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: the i-th smallest times (m − i), made monotone and
    capped at 1 (statsmodels' `multipletests(method="holm")` gives the same numbers, but runs a
    full garbage collection per call, which dominates scoring many small comparisons)."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    steps = np.maximum.accumulate((m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def _case_codes(matrix: pd.DataFrame) -> np.ndarray:
    """An integer per (suite, task, case) of each row."""
    index = matrix.index
    parts = [index.get_level_values(name).astype(str) for name in ("suite", "task", "case")]
    labels = parts[0] + "\x1f" + parts[1] + "\x1f" + parts[2]
    return np.unique(np.asarray(labels), return_inverse=True)[1]


def _pair(x: np.ndarray, y: np.ndarray, cases: np.ndarray, a: str, b: str) -> dict[str, object]:
    both_judged = ~(np.isnan(x) | np.isnan(y))
    x, y, case = x[both_judged], y[both_judged], cases[both_judged]
    n = len(x)
    counts = {
        "both": float(np.sum((x == 1) & (y == 1))),
        "only_a": float(np.sum((x == 1) & (y == 0))),
        "only_b": float(np.sum((x == 0) & (y == 1))),
        "neither": float(np.sum((x == 0) & (y == 0))),
    }
    deff = difference_deff(x - y, case) if n else 1.0
    effective = {k: v / deff for k, v in counts.items()}
    low, high = paired_difference_interval(
        effective["both"], effective["only_a"], effective["only_b"], effective["neither"]
    )
    p_value = mcnemar_mid_p(effective["only_a"], effective["only_b"])
    return {
        "model_a": a,
        "model_b": b,
        "pairs": n,
        **{k: int(v) for k, v in counts.items()},
        "rate_a": float(x.mean()) if n else np.nan,
        "rate_b": float(y.mean()) if n else np.nan,
        "diff": float((x - y).mean()) if n else np.nan,
        "low": float(low),
        "high": float(high),
        "deff": deff,
        "p_value": float(p_value),
    }


def difference_deff(diff: np.ndarray, case: np.ndarray) -> float:
    """The design effect of the paired differences, clustered by case."""
    _, codes = np.unique(case, return_inverse=True)
    m = np.bincount(codes).astype(np.float64)
    s = np.bincount(codes, weights=diff)
    present = m > 0
    m, s = m[present], s[present]
    return float(
        design_effect(
            len(diff),
            diff.sum(),
            len(m),
            np.sum(m * m),
            np.sum(s * s / m),
            sum_sq=np.sum(diff * diff),
            events=np.count_nonzero(diff),
        )
    )


def detectable_difference(pairs: float, comparisons: int = 1, alpha: float = ALPHA) -> float:
    """The smallest difference in pass rate the paired test could call significant with
    `pairs` effective pairs, in the best case (every discordant pair going one way): it needs
    d discordant pairs with 2·½^d·½ ≤ α / comparisons (Holm's strictest step)."""
    if pairs <= 0:
        return float("nan")
    discordant = 1
    while float(mcnemar_mid_p(discordant, 0)) > alpha / max(comparisons, 1):
        discordant += 1
    return min(1.0, discordant / pairs)
