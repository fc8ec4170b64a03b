"""The paired drop test: each noise level against the clean twins of its attempts."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from margin.stats import attempts_of
from margin.stats.drops import drop_tests, first_drops
from tests.stats.records import record


def axis(fails_at: dict[float, int], cases: int = 20, clean_fails: int = 0) -> list:  # type: ignore[type-arg]
    """`cases` cases: the clean prompt fails the first `clean_fails`; typos at each level fail
    the last `fails_at[level]` cases (so every noisy failure of a clean pass is a loss)."""
    records = [record("m", f"c{i}", i >= clean_fails) for i in range(cases)]
    for level, fails in fails_at.items():
        variant = f"p0~typos@{level:g}v1"
        records += [
            record("m", f"c{i}", i < cases - fails, variant=variant, noise=("typos", level))
            for i in range(cases)
        ]
    return records


def test_losses_gains_and_holm_across_the_levels_by_hand() -> None:
    tests = drop_tests(attempts_of(axis({0.05: 2, 0.1: 8})).frame)
    low, high = tests.sort_values("noise_level").to_dict("records")
    assert (low["pairs"], low["losses"], low["gains"]) == (20, 2, 0)
    assert (high["pairs"], high["losses"], high["gains"]) == (20, 8, 0)
    # one-sided exact McNemar: P(X >= b), X ~ Bin(b + c, 1/2): 1/4 and 1/256
    assert low["p_value"] == pytest.approx(0.25)
    assert high["p_value"] == pytest.approx(binomtest(8, 8, 0.5, alternative="greater").pvalue)
    # Holm over 2 levels: 2 x 1/256 = 0.0078 for the smaller, max(0.0078, 1 x 0.25) for the other
    assert high["p_holm"] == pytest.approx(2 / 256) and low["p_holm"] == pytest.approx(0.25)
    assert (bool(low["significant"]), bool(high["significant"])) == (False, True)
    [first] = first_drops(tests).to_dict("records")
    assert first["drops_at"] == 0.1


def test_gains_offset_losses() -> None:
    # the clean prompt fails c0..c3; the noisy one fails c16..c19 and passes c0..c3: 4 each way
    tests = drop_tests(attempts_of(axis({0.1: 4}, clean_fails=4)).frame)
    [row] = tests.to_dict("records")
    assert (row["losses"], row["gains"]) == (4, 4)
    assert row["p_value"] == pytest.approx(binomtest(4, 8, 0.5, alternative="greater").pvalue)
    assert not row["significant"]


def test_a_run_without_noise_has_no_drop_tests() -> None:
    frame = attempts_of([record("m", f"c{i}", True) for i in range(5)]).frame
    assert drop_tests(frame).empty and first_drops(drop_tests(frame)).empty
