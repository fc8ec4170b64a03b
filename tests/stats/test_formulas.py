"""Every formula against a hand computation and, where they have it, scipy or statsmodels."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from margin.stats import (
    design_effect,
    detectable_difference,
    mcnemar_mid_p,
    pass_at_k,
    pass_hat_k,
    straight_passes_to_cross,
    wilson_interval,
)
from margin.stats.intervals import paired_difference_interval, rate_interval, verdicts
from margin.stats.numbers import interval, percent, rate_with_interval

Z = 1.959963984540054


def wilson_by_hand(c: float, n: float) -> tuple[float, float]:
    p = c / n
    centre = p + Z * Z / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


@pytest.mark.parametrize(("c", "n"), [(5, 5), (0, 5), (3, 10), (199, 200), (41, 46), (1, 1000)])
def test_wilson_matches_hand_computation_and_scipy(c: int, n: int) -> None:
    low, high = wilson_interval(c, n)
    hand = wilson_by_hand(c, n)
    scipy_ci = stats.binomtest(c, n).proportion_ci(method="wilson")
    assert float(low) == pytest.approx(hand[0], abs=1e-12)
    assert float(high) == pytest.approx(hand[1], abs=1e-12)
    assert float(low) == pytest.approx(scipy_ci.low, abs=1e-12)
    assert float(high) == pytest.approx(scipy_ci.high, abs=1e-12)


def test_five_of_five_is_never_a_point() -> None:
    low, high = rate_interval(5, 5)
    assert float(low) == pytest.approx(0.4782, abs=1e-4)  # Clopper–Pearson: 0.025^(1/5)
    assert float(high) == 1.0
    assert rate_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(5, 5)
    assert float(low) == pytest.approx(0.5655, abs=1e-4)  # Wilson's [0.57, 1.0], narrower
    assert float(high) == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_evidence_needed_by_hand() -> None:
    # n/n's lower bound is 0.025^(1/n), so n ≥ ln 0.025 / ln t: 35.01 → 36 for 0.90,
    # 71.92 → 72 for 0.95, 367.04 → 368 for 0.99.
    assert [straight_passes_to_cross(t) for t in (0.90, 0.95, 0.99)] == [36, 72, 368]
    for target, n in [(0.90, 36), (0.95, 72), (0.99, 368)]:
        assert float(rate_interval(n, n)[0]) >= target > float(rate_interval(n - 1, n - 1)[0])


def test_verdicts_are_three_states() -> None:
    result = verdicts([0.91, 0.5, 0.8, 0.9], [1.0, 0.89, 0.95, 0.99], [0.9, 0.9, 0.9, 0.9])
    assert list(result) == ["crosses", "falls short", "undecided", "crosses"]


def icc_by_hand(groups: list[list[int]]) -> float:
    """One-way ANOVA intra-class correlation, written out with loops."""
    values = [v for g in groups for v in g]
    n, k = len(values), len(groups)
    mean = sum(values) / n
    ssb = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups)
    ssw = sum((v - sum(g) / len(g)) ** 2 for g in groups for v in g)
    msb, msw = ssb / (k - 1), ssw / (n - k)
    m0 = (n - sum(len(g) ** 2 for g in groups) / n) / (k - 1)
    return (msb - msw) / (msb + (m0 - 1) * msw)


def deff_of(groups: list[list[int]]) -> float:
    n = sum(len(g) for g in groups)
    return float(
        design_effect(
            n,
            sum(map(sum, groups)),
            len(groups),
            sum(len(g) ** 2 for g in groups),
            sum(sum(g) ** 2 / len(g) for g in groups),
        )
    )


def test_design_effect_matches_the_anova_icc_with_its_shrinkage() -> None:
    groups = [[1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 0]]
    rho = icc_by_hand(groups)
    assert 0 < rho < 1
    values = [v for g in groups for v in g]
    events = min(sum(values), len(values) - sum(values))
    shrunk = (events * rho + 2) / (events + 2)
    assert deff_of(groups) == pytest.approx(1 + (4 - 1) * shrunk)


def test_design_effect_counts_cases_when_repeats_agree() -> None:
    # Temperature 0: every case's repeats are copies, so 10 cases x 5 repeats are 10 pieces of evidence.
    copies = [[1] * 5] * 7 + [[0] * 5] * 3
    assert deff_of(copies) == pytest.approx(5.0)
    assert deff_of([[1] * 5] * 10) == pytest.approx(5.0)
    assert deff_of([[1], [0], [1]]) == 1.0  # one attempt per case: nothing to correct
    assert deff_of([[1, 0, 1, 1]]) == 1.0  # one case: independent repeats (deff 1)


def tau_bench_pass_hat_k(outcomes: list[int], k: int) -> float:
    """The share of k-subsets of a case's repeats that all pass (tau-bench's definition)."""
    subsets = list(combinations(outcomes, k))
    return sum(all(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("outcomes", [[1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1], [0, 0], [1, 0]])
def test_pass_hat_k_and_pass_at_k_on_small_tables(outcomes: list[int]) -> None:
    n, c = len(outcomes), sum(outcomes)
    for k in range(1, n + 1):
        assert float(pass_hat_k(c, n, k)) == pytest.approx(tau_bench_pass_hat_k(outcomes, k))
        any_pass = sum(any(s) for s in combinations(outcomes, k)) / math.comb(n, k)
        assert float(pass_at_k(c, n, k)) == pytest.approx(any_pass)
    assert float(pass_hat_k(2, 4, 2)) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)


@pytest.mark.parametrize(("b", "c"), [(5, 0), (0, 5), (7, 3), (12, 12), (1, 9), (30, 14), (0, 0)])
def test_mid_p_mcnemar_against_statsmodels_exact(b: int, c: int) -> None:
    mid = float(mcnemar_mid_p(b, c))
    if b + c == 0:
        assert mid == 1.0
        return
    exact = mcnemar([[0, b], [c, 0]], exact=True).pvalue  # 2·P(X ≤ min), capped at 1
    point = stats.binom.pmf(min(b, c), b + c, 0.5)
    assert mid == pytest.approx(min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5) - point))
    assert mid <= exact + 1e-12  # mid-p is the less conservative of the two
    if b != c:
        assert mid == pytest.approx(exact - point)


def test_mid_p_by_hand() -> None:
    assert float(mcnemar_mid_p(5, 0)) == pytest.approx(0.5**5)  # 2·(½⁵ − ½·½⁵)
    assert float(mcnemar_mid_p(4, 0)) == pytest.approx(0.0625)
    # b=3, c=1: 2·[P(X≤1) − ½P(X=1)] with X~Bin(4,½) = 2·(5/16 − 2/16) = 6/16
    assert float(mcnemar_mid_p(3, 1)) == pytest.approx(6 / 16)


def test_paired_difference_interval_contains_the_difference_and_never_collapses() -> None:
    low, high = paired_difference_interval(40, 10, 2, 8)
    assert float(low) < (10 - 2) / 60 < float(high)
    low, high = paired_difference_interval(30, 0, 0, 0)
    assert float(low) < 0 < float(high)
    # Newcombe (1998), table II, example (a): a=36, b=12, c=2, d=0 → [0.0569, 0.3404]
    low, high = paired_difference_interval(36, 12, 2, 0)
    assert (float(low), float(high)) == pytest.approx((0.0569, 0.3404), abs=6e-4)


def test_detectable_difference_is_five_discordant_pairs_at_best() -> None:
    assert detectable_difference(100) == pytest.approx(0.05)
    assert detectable_difference(100, comparisons=3) == pytest.approx(0.06)  # ½⁶ ≤ 0.05/3
    assert math.isnan(detectable_difference(0))


def test_numbers_never_round_to_a_claim() -> None:
    assert percent(199 / 200, 199, 200) == "99.5%"
    assert percent(1999 / 2000, 1999, 2000) == "99.95%"
    assert percent(99999 / 100000, 99999, 100000) != "100.0%"
    assert percent(1.0, 5, 5) == "100.0%"
    assert percent(1 / 100000, 1, 100000) != "0.0%"
    assert interval(0.76963, 0.95267) == "[76.9, 95.3]"  # outward
    assert rate_with_interval(41, 46, 0.7696, 0.9527) == "41/46 89.1% [76.9, 95.3]"
    assert np.isnan(float("nan")) and percent(float("nan")) == "–"
