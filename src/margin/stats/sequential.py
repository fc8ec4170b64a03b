"""Always-valid intervals for adaptive repeats: look after every round without inflating errors.

A fixed-n interval checked after every round is wrong more often than its level says. The
beta-binomial mixture below is a nonnegative martingale under the true rate m, so by Ville's
inequality the chance that it *ever* reaches 1/α is at most α: the set of rates where it stays
below 1/α is a confidence sequence, valid at every round at once, however the rounds are chosen.

    M_n(m) = B(a + S, b + F) / B(a, b) / (m^S (1 − m)^F)      (S passes, F fails)

The rule of an adaptive cell: it closes as `crosses` when the sequence's lower bound reaches
the target, as `falls short` when its upper bound is below it (the adaptive loop closes it only
when the report's own interval agrees; `settled`, within ±δ of the target, no longer stops a
cell). A cell that reaches the repeat cap is judged like a fixed run, by the Clopper–Pearson
interval on everything collected. Errors: at most α from the sequence (over all rounds) plus
the fixed-n error at the cap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED, Floats

PRIOR = (0.5, 0.5)
"""Beta(½, ½) mixing prior: tighter near 0 and 1 than the uniform (see the tests)."""
SETTLED = "settled"


def _log_martingale(m: Floats, passes: Floats, fails: Floats) -> Floats:
    a, b = PRIOR
    mixture = special.betaln(a + passes, b + fails) - special.betaln(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        likelihood = special.xlogy(passes, m) + special.xlog1py(fails, -m)
    return np.asarray(mixture - likelihood, dtype=np.float64)


def confidence_sequence(
    passes: ArrayLike, n: ArrayLike, alpha: float = 0.05
) -> tuple[Floats, Floats]:
    """The always-valid interval for `passes` of `n` (effective counts may be fractional):
    every rate m whose mixture martingale is below 1/α."""
    s = np.asarray(passes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    f = total - s
    centre = np.where(total > 0, s / np.maximum(total, 1e-12), 0.5)
    threshold = np.log(1 / alpha)
    low_lo, low_hi = np.zeros_like(centre), centre.copy()  # log M falls on [0, centre]
    high_lo, high_hi = centre.copy(), np.ones_like(centre)  # and rises on [centre, 1]
    for _ in range(60):
        mid = (low_lo + low_hi) / 2
        outside = _log_martingale(mid, s, f) >= threshold
        low_lo, low_hi = np.where(outside, mid, low_lo), np.where(outside, low_hi, mid)
        mid = (high_lo + high_hi) / 2
        outside = _log_martingale(mid, s, f) >= threshold
        high_lo, high_hi = np.where(outside, high_lo, mid), np.where(outside, mid, high_hi)
    empty = total <= 0
    return np.where(empty, 0.0, low_lo), np.where(empty, 1.0, high_hi)


def sequential_verdicts(
    passes: ArrayLike, n: ArrayLike, target: ArrayLike, alpha: float = 0.05, delta: float = 0.02
) -> np.ndarray:
    """Per cell: `crosses`, `falls short`, `settled` (within ±δ of the target) or `undecided`
    (keep sampling) from the confidence sequence at this round."""
    low, high = confidence_sequence(passes, n, alpha)
    t = np.asarray(target, dtype=np.float64)
    return np.where(
        low >= t,
        CROSSES,
        np.where(
            high < t,
            FALLS_SHORT,
            np.where((low >= t - delta) & (high <= t + delta), SETTLED, UNDECIDED),
        ),
    ).astype(object)
