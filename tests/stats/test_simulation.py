"""Seeded simulations: the paired test keeps its false-alarm rate, and clustering needs its
correction. Interval coverage is checked pointwise, one side at a time, in test_coverage.py (an
average over uniformly drawn true rates here once hid Wilson's dips)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from margin.stats import compare_pairs
from margin.stats.cells import interval_table
from margin.stats.compare import holm


def pooled_coverage(
    cases: int, repeats: int, mean: float, icc: float, trials: int, seed: int
) -> float:
    """Cases whose true rates differ (beta-binomial with intra-class correlation `icc`), each
    attempted `repeats` times; the pooled cell's interval must cover the mean true rate."""
    rng = np.random.default_rng(seed)
    spread = 1 / icc - 1
    rates = rng.beta(mean * spread, (1 - mean) * spread, size=(trials, cases))
    passes = rng.binomial(repeats, rates)
    counts = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(trials), cases),
            "n": repeats,
            "c": passes.ravel(),
        }
    )
    table = interval_table(counts, ["cell"])
    return float(np.mean((table["low"] <= mean) & (mean <= table["high"])))


def test_a_plain_clt_interval_would_fail_the_same_simulation() -> None:
    """The design effect has teeth: a naive ±1.96·SE over all attempts undercovers clustered
    data, the interval on effective counts does not."""
    rng = np.random.default_rng(7)
    trials, cases, repeats, mean, icc = 2000, 30, 5, 0.9, 0.3
    spread = 1 / icc - 1
    rates = rng.beta(mean * spread, (1 - mean) * spread, size=(trials, cases))
    p = rng.binomial(repeats, rates).sum(axis=1) / (cases * repeats)
    half = 1.96 * np.sqrt(p * (1 - p) / (cases * repeats))
    naive = np.mean((p - half <= mean) & (mean <= p + half))
    assert naive < 0.90
    assert pooled_coverage(cases, repeats, mean, icc, trials, seed=7) >= 0.94


def null_matrix(rng: np.random.Generator, cases: int, repeats: int) -> pd.DataFrame:
    """Two models with the same per-case pass rates: any difference is noise."""
    rates = np.repeat(rng.beta(2, 1, size=cases), repeats)
    index = pd.MultiIndex.from_arrays(
        [
            ["s"] * (cases * repeats),
            ["t"] * (cases * repeats),
            np.repeat([f"c{i}" for i in range(cases)], repeats),
            ["p0"] * (cases * repeats),
            np.tile(np.arange(repeats), cases),
        ],
        names=["suite", "task", "case", "variant", "repeat"],
    )
    return pd.DataFrame(
        {"a": rng.binomial(1, rates).astype(float), "b": rng.binomial(1, rates).astype(float)},
        index=index,
    )


def test_paired_test_false_alarm_rate_is_nominal() -> None:
    rng = np.random.default_rng(11)
    p = np.array([compare_pairs(null_matrix(rng, 100, 1))["p_value"].iloc[0] for _ in range(2000)])
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_paired_test_holds_alpha_when_repeats_cluster_by_case() -> None:
    rng = np.random.default_rng(12)
    p = np.array([compare_pairs(null_matrix(rng, 50, 4))["p_value"].iloc[0] for _ in range(2000)])
    assert np.mean(p < 0.05) <= 0.06


def test_paired_test_finds_a_real_difference() -> None:
    rng = np.random.default_rng(13)
    matrix = null_matrix(rng, 200, 1)
    worse = matrix["b"].to_numpy().copy()
    flip = rng.random(len(worse)) < 0.25
    matrix["b"] = np.where(flip, 0.0, worse)
    row = compare_pairs(matrix).iloc[0]
    assert row["p_value"] < 0.01 and row["significant"]
    assert row["low"] > 0 and row["diff"] > 0


def test_holm_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 3, 6, 10):
        p = rng.uniform(0, 0.2, size)
        expected = multipletests(p, alpha=0.05, method="holm")[1]
        assert holm(p) == pytest.approx(expected)
