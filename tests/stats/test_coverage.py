"""Pointwise coverage: "crosses" and "falls short" are each wrong at most α/2 at every true rate.

A verdict reads one bound: "crosses" when low ≥ target, "falls short" when high < target. Against
the worst target (just above, or at, the true rate p) the chance of a wrong "crosses" is
P(low > p) and of a wrong "falls short" P(high < p). Both must be ≤ α/2 = 2.5% at every p, not
on average over p (an average over uniformly drawn rates hid Wilson's dips to 90.4% two-sided
coverage at n = 10, p = 0.99). Single cells are checked exactly over every outcome; pooled cells
(cases that differ, several repeats each, effective counts through the design effect) by seeded
simulation through `interval_table`, the code path every reported cell takes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from margin.stats.cells import interval_table
from margin.stats.intervals import (
    CONFIDENCE,
    clopper_pearson_interval,
    rate_interval,
    verdicts,
    wilson_interval,
)

TAIL = (1 - CONFIDENCE) / 2
SIZES = [5, 10, 20, 50, 200]
RATES = [0.5, 0.8, 0.9, 0.95, 0.99]


def exact_errors(interval, n: int, p: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """P(low > p) and P(high < p) for X ~ Binomial(n, p), summed over every outcome."""
    x = np.arange(n + 1)
    low, high = interval(x, np.full(n + 1, n))
    weight = stats.binom.pmf(x, n, p)
    return float(weight[low > p].sum()), float(weight[high < p].sum())


def test_rate_interval_is_clopper_pearson_and_matches_statsmodels() -> None:
    for n in (1, 5, 17, 200):
        x = np.arange(n + 1)
        low, high = rate_interval(x, np.full(n + 1, n))
        want_low, want_high = proportion_confint(x, n, alpha=1 - CONFIDENCE, method="beta")
        assert low == pytest.approx(np.nan_to_num(want_low, nan=0.0), abs=1e-12)
        assert high == pytest.approx(np.nan_to_num(want_high, nan=1.0), abs=1e-12)


def test_clopper_pearson_by_hand() -> None:
    # n/n: P(X = n) = low^n = 0.025 at the lower bound, so low = 0.025^(1/n)
    assert float(rate_interval(5, 5)[0]) == pytest.approx(0.025 ** (1 / 5), abs=1e-12)
    assert float(rate_interval(5, 5)[0]) == pytest.approx(0.4782, abs=1e-4)
    assert float(rate_interval(5, 5)[1]) == 1.0
    # 0/n mirrors it; n = 0 says nothing
    assert float(rate_interval(0, 5)[1]) == pytest.approx(1 - 0.025 ** (1 / 5), abs=1e-12)
    assert [float(b) for b in rate_interval(0, 0)] == [0.0, 1.0]
    # 1/2: the lower bound solves 1 − (1 − p)² = 0.025, the upper 1 − p² = 0.025
    low, high = rate_interval(1, 2)
    assert float(low) == pytest.approx(1 - np.sqrt(0.975), abs=1e-12)
    assert float(high) == pytest.approx(np.sqrt(0.975), abs=1e-12)


def test_non_integer_effective_counts_fall_between_their_neighbours() -> None:
    low, high = clopper_pearson_interval([4.0, 4.5, 5.0], [10.0, 10.0, 10.0])
    assert low[0] < low[1] < low[2] and high[0] < high[1] < high[2]
    low, high = clopper_pearson_interval(7.3, 7.3)
    assert float(low) == pytest.approx(0.025 ** (1 / 7.3)) and float(high) == 1.0


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", RATES)
def test_each_verdict_is_wrong_at_most_alpha_over_2_exactly(n: int, p: float) -> None:
    wrong_crosses, wrong_falls_short = exact_errors(rate_interval, n, p)
    assert wrong_crosses <= TAIL and wrong_falls_short <= TAIL, (wrong_crosses, wrong_falls_short)


@pytest.mark.parametrize("n", SIZES)
def test_the_guarantee_holds_on_a_fine_grid_of_rates(n: int) -> None:
    """Between the grid's rates too: 0.001 apart over (0, 1), and read through `verdicts`."""
    x = np.arange(n + 1)
    low, high = rate_interval(x, np.full(n + 1, n))
    for p in np.linspace(0.001, 0.999, 999):
        weight = stats.binom.pmf(x, n, p)
        # a target a hair above p: "crosses" is wrong; at p itself: "falls short" is wrong
        wrong_crosses = weight[verdicts(low, high, np.nextafter(p, 1)) == "crosses"].sum()
        wrong_falls_short = weight[verdicts(low, high, p) == "falls short"].sum()
        assert wrong_crosses <= TAIL and wrong_falls_short <= TAIL, (p, n)


def test_wilson_would_fail_the_same_check() -> None:
    """The test has teeth: the audit's points where Wilson's verdicts err more than α/2."""
    for n, p in [(10, 0.99), (50, 0.99), (10, 0.95), (5, 0.9)]:
        assert max(exact_errors(wilson_interval, n, p)) > TAIL, (n, p)


def pooled_errors(
    cases: int, repeats: int, mean: float, icc: float, trials: int, seed: int, interval=None
) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Share of simulated pooled cells whose lower bound exceeds the mean true rate, and whose
    upper bound falls below it. Cases' true rates are Beta with mean `mean` and intra-class
    correlation `icc`; each is attempted `repeats` times."""
    rng = np.random.default_rng(seed)
    spread = 1 / icc - 1
    rates = rng.beta(mean * spread, (1 - mean) * spread, size=(trials, cases))
    passes = rng.binomial(repeats, rates)
    counts = pd.DataFrame(
        {"cell": np.repeat(np.arange(trials), cases), "n": repeats, "c": passes.ravel()}
    )
    table = interval_table(counts, ["cell"])
    if interval is None:
        low, high = table["low"].to_numpy(), table["high"].to_numpy()
    else:
        low, high = interval(table["passes"] / table["deff"], table["n_eff"])
    return float(np.mean(low > mean)), float(np.mean(high < mean))


TRIALS = 6000
NOISE = float(stats.binom.isf(1e-4, TRIALS, TAIL)) / TRIALS
"""An error share above this from a true rate of α/2 has chance < 1e-4 (about 0.032 here)."""


@pytest.mark.parametrize("cases", [10, 20, 30, 60])
@pytest.mark.parametrize("repeats", [3, 5])
def test_pooled_cells_keep_each_verdict_error_within_alpha_over_2(cases: int, repeats: int) -> None:
    """Beta-binomial cells: every rate and intra-class correlation, each one-sided error
    ≤ α/2 + simulation noise (at 200 000 trials the worst points, p = 0.5 with 60 cases, err
    2.0–2.2%; p near 1 errs far less, the bound being conservative there)."""
    worst = 0.0
    for mean in RATES:
        for icc in (0.05, 0.3, 0.6):
            seed = int(cases * 1000 + repeats * 100 + mean * 50 + icc * 10)
            errors = pooled_errors(cases, repeats, mean, icc, TRIALS, seed)
            worst = max(worst, *errors)
            assert max(errors) <= NOISE, (mean, icc, errors)
    if cases == 60:
        # not simply wide: with many cases some point comes near α/2
        assert worst > 0.015, worst


def test_pooled_wilson_would_fail_the_same_simulation() -> None:
    """With the same effective counts, Wilson's verdicts err more than the noise allows."""
    errors = pooled_errors(10, 3, 0.99, 0.6, TRIALS, seed=5, interval=wilson_interval)
    assert max(errors) > NOISE, errors
