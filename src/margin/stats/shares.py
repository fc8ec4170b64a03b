"""Intervals for the means and shares shown beside pass rates: partial credit, pass^k and
pass@k, consistency and retry-free coverage, and the paraphrases' average.

Each is a mean over a cell's cases of a per-case value in [0, 1] (a share of cases is the mean
of a 0/1 value). Cases are the independent units (repeats of a case are not), so the interval
is over cases: `share_interval(sum of the per-case values, cases)`. A value bounded in [0, 1]
with mean μ has variance at most μ(1 − μ), a coin's with the same mean, so the binomial
interval on (sum, cases) is at least as wide as the mean's own sampling spread needs. For a
share of cases (consistency, retry-free) it is exactly the binomial interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from margin.stats.cells import case_counts, interval_table
from margin.stats.intervals import share_interval


def with_share_intervals(table: pd.DataFrame, frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`table` (cells at the level `keys`, with `cases`, `consistency`, `retry_free`) with the
    95% interval over cases of partial credit (`partial_low`/`partial_high`, from each case's
    mean partial credit over its judged attempts), of consistency and of retry-free coverage."""
    judged = frame[frame["judged"]] if "judged" in frame else frame
    group_keys = [*keys, *[k for k in ("suite", "task", "case") if k not in keys]]
    per_case = judged.groupby(group_keys, observed=True, sort=False)["partial"].mean()
    per_cell = per_case.groupby(level=list(range(len(keys))), observed=True, sort=False)
    sums = per_cell.sum()  # sum and count apart: a list `agg` costs about twice as much
    low, high = share_interval(sums, per_cell.count().to_numpy())
    partial = sums.index.to_frame(index=False).assign(partial_low=low, partial_high=high)
    out = table.drop(columns=["partial_low", "partial_high"], errors="ignore")
    out = out.merge(partial, on=keys, how="left")
    for name in ("consistency", "retry_free"):
        known = out[name].notna()
        low, high = share_interval(
            (out[name].fillna(0) * out["cases"]).round(), out["cases"].fillna(0)
        )
        out[f"{name}_low"] = np.where(known, low, np.nan)
        out[f"{name}_high"] = np.where(known, high, np.nan)
    return out


def with_pass_k_intervals(pass_k: pd.DataFrame) -> pd.DataFrame:
    """pass^k and pass@k rows with their 95% intervals over the cases they average
    (`pass_hat_k_low`/`_high`, `pass_at_k_low`/`_high`)."""
    out = pass_k.copy()
    cases = out["cases"].astype(np.float64)
    for name in ("pass_hat_k", "pass_at_k"):
        low, high = share_interval(out[name].astype(np.float64) * cases, cases)
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    return out


def with_wordings_pooled(spread: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Paraphrase-spread rows with the clean prompt and its paraphrases pooled: `avg_passes`
    of `avg_n` judged attempts and the 95% interval clustered by case (the pass rate's
    interval), the AvgP that can carry an n (equal to `avg_p` when every wording has the same
    judged attempts)."""
    keys = ["model", "suite", "task"]
    columns = ["avg_passes", "avg_n", "avg_low", "avg_high"]
    if spread.empty:
        return spread.assign(**{c: pd.Series(dtype=np.float64) for c in columns})
    clean = frame[frame["noise_kind"] == "clean"]
    pooled = interval_table(case_counts(clean, keys), keys)
    names = {"passes": "avg_passes", "n": "avg_n", "low": "avg_low", "high": "avg_high"}
    pooled = pooled[[*keys, *names]].rename(columns=names)
    return spread.merge(pooled, on=keys, how="left")
