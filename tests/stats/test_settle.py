"""New cases to settle an undecided cell with an 80% chance (issue 25, item 9)."""

from __future__ import annotations

import numpy as np

from margin.stats import CONDITION, attempts_of, cell_table
from margin.stats.intervals import rate_interval
from margin.stats.settle import new_cases_to_settle, settle_probability
from tests.stats.records import repeated

TARGETS = {("s", "t"): 0.9}


def test_clustered_cell_asks_for_far_fewer_new_cases_than_attempts_by_hand() -> None:
    # 10 cases × 5 repeats, 8 cases pass every repeat and 2 fail every one: deff 5, so the
    # evidence is 8/10 effective; the old count (z²·0.9·0.1/0.1² = 34.57 effective, × 5 − 50)
    # says 123 more attempts at the current clustering.
    row = cell_table(
        attempts_of(repeated("m", ["11111"] * 8 + ["00000"] * 2)).frame, CONDITION, TARGETS
    ).iloc[0]
    assert (row["passes"], row["n"], row["deff"], row["verdict"]) == (40, 50, 5.0, "undecided")
    assert row["more_attempts"] == 123
    cases = int(row["more_cases"])
    assert cases == 89 and cases < 123
    # exact, at the observed rate 0.8: 8 + X of 10 + 89, X ~ Binomial(89, 0.8), settled when
    # the Clopper–Pearson interval leaves 0.9 out (by hand with scipy's beta.ppf: 0.807; 88
    # cases give 0.793; the lattice makes 83 and 84 also reach 0.8, which bisection skips)
    assert 0.80 < settle_probability(8, 10, 0.8, 0.9, cases) < 0.81
    assert settle_probability(8, 10, 0.8, 0.9, cases - 1) < 0.8
    # the coin flip's count of attempts, 123 / 5 ≈ 25 new cases, settles it only 38% of the time
    assert 0.37 < settle_probability(8, 10, 0.8, 0.9, 25) < 0.39


def test_stated_new_cases_settle_the_cell_in_simulation() -> None:
    rng = np.random.default_rng(25)
    for passes, n, target in [(8.0, 10.0, 0.9), (10.0, 10.0, 0.9), (45.0, 50.0, 0.8)]:
        rate = passes / n
        low, high = rate_interval(passes, n)
        assert low < target <= high  # undecided now
        new = int(new_cases_to_settle(passes, n, target))
        drawn = rng.binomial(new, rate, size=20_000)
        low, high = rate_interval(passes + drawn, n + new)
        settled = np.mean((low >= target) | (high < target))
        assert settled >= 0.78, (passes, n, target, new, settled)


def test_a_rate_on_the_target_has_no_number_of_new_cases() -> None:
    assert np.isnan(new_cases_to_settle(9.0, 10.0, 0.9))
    row = cell_table(attempts_of(repeated("m", ["0"] * 10)).frame, CONDITION, TARGETS).iloc[0]
    assert row["verdict"] == "falls short" and np.isnan(row["more_cases"])
