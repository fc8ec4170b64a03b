"""The confidence sequence for adaptive repeats: valid over every look at once."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from margin.stats.intervals import rate_interval, verdicts
from margin.stats.sequential import confidence_sequence, sequential_verdicts


def test_bounds_are_where_the_mixture_martingale_reaches_one_over_alpha() -> None:
    low, high = confidence_sequence([30], [40], alpha=0.05)
    for m in (float(low[0]), float(high[0])):
        log_m = (
            special.betaln(0.5 + 30, 0.5 + 10) - special.betaln(0.5, 0.5)
            - 30 * np.log(m) - 10 * np.log(1 - m)
        )  # fmt: skip
        assert log_m == pytest.approx(np.log(20), abs=1e-6)
    wl, wh = rate_interval(30, 40)
    assert low[0] < wl and high[0] > wh  # always-valid costs width against a fixed-n interval


def test_never_a_point_and_empty_is_everything() -> None:
    low, high = confidence_sequence([5, 0], [5, 0])
    assert 0 < low[0] < 1 and high[0] == pytest.approx(1.0)
    assert (low[1], high[1]) == (0.0, 1.0)


def test_coverage_holds_over_every_look_at_once() -> None:
    """The chance that the sequence *ever* excludes the true rate, looking after every single
    attempt up to 300, stays below α; the fixed-n interval looked at the same way does not."""
    rng = np.random.default_rng(5)
    trials, length = 1000, 300
    for rate in (0.5, 0.9, 0.97):
        passes = np.cumsum(rng.random((trials, length)) < rate, axis=1)
        n = np.broadcast_to(np.arange(1, length + 1), passes.shape)
        low, high = confidence_sequence(passes.ravel(), n.ravel())
        missed = ((low > rate) | (high < rate)).reshape(trials, length).any(axis=1)
        assert missed.mean() <= 0.05, (rate, missed.mean())
        wl, wh = rate_interval(passes.ravel(), n.ravel())
        peeking = ((wl > rate) | (wh < rate)).reshape(trials, length).any(axis=1)
        assert peeking.mean() > 0.15  # the reason a sequential method is needed


def rounds(cap: int, first: int = 5, growth: float = 1.5) -> list[int]:
    sizes = [first]
    while sizes[-1] < cap:
        sizes.append(min(cap, int(np.ceil(sizes[-1] * growth))))
    return sizes


def test_adaptive_decisions_match_fixed_ones_and_are_rarely_wrong() -> None:
    """1,000+ simulated cells with true rates around a 0.9 target: closing a cell when the
    sequence decides (else judging it at the cap like a fixed run) gives the fixed run's
    decision wherever the fixed run decided, wrong ≤ α, for fewer attempts."""
    rng = np.random.default_rng(8)
    cells, cap, target, delta = 2000, 150, 0.9, 0.02
    truth = rng.uniform(0.5, 1.0, cells)
    cum = np.cumsum(rng.random((cells, cap)) < truth[:, None], axis=1)
    lo, hi = rate_interval(cum[:, -1], np.full(cells, cap))
    fixed = verdicts(lo, hi, np.full(cells, target))
    decision = np.array(["undecided"] * cells, dtype=object)
    used, still_open = np.full(cells, cap), np.ones(cells, dtype=bool)
    for size in rounds(cap)[:-1]:
        verdict = sequential_verdicts(
            cum[:, size - 1], np.full(cells, size), np.full(cells, target)
        )
        closing = still_open & (verdict != "undecided")
        decision[closing], used[closing] = verdict[closing], size
        still_open &= ~closing
    decision[still_open] = fixed[still_open]
    decided = fixed != "undecided"
    assert np.mean(decision[decided] == fixed[decided]) >= 0.99
    wrong = ((decision == "crosses") & (truth < target - delta)) | (
        (decision == "falls short") & (truth > target)
    )
    assert wrong.mean() <= 0.05
    assert used.sum() / (cap * cells) < 0.60
