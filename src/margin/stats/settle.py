"""How many new cases would settle an undecided cell, with a stated chance.

The normal-approximation count (`effective_n_to_decide`) is where the interval around the
*current* rate would leave the target: at that many more attempts, half the outcomes still leave
the cell undecided. This module asks instead: assuming the true rate is the observed one, how
many new cases, one attempt each (independent, no design effect), make `rate_interval`
(Clopper–Pearson) on the pooled effective counts (existing effective passes and n, plus the new
passes and cases) lie entirely above or below the target with probability at least
`SETTLE_PROBABILITY`? The new passes follow the exact binomial distribution; the search runs
over N.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from margin.stats.intervals import CONFIDENCE, Floats, rate_interval

SETTLE_PROBABILITY = 0.8
"""The chance the stated number of new cases settles the cell (at the observed rate)."""
MAX_NEW_CASES = 10**7
"""Beyond this, an undecided cell is reported as not decidable at its current rate."""
_TAIL = 1e-10


def settle_probability(
    passes_eff: float,
    n_eff: float,
    rate: float,
    target: float,
    new: int,
    confidence: float = CONFIDENCE,
) -> float:
    """P(the interval on passes_eff + X of n_eff + new excludes `target`), X ~ Bin(new, rate)."""
    if new <= 0:
        low, high = rate_interval(passes_eff, n_eff, confidence)
        return float((low >= target) | (high < target))
    from scipy import stats  # ~1 s to import; only undecided cells get here

    first = int(stats.binom.ppf(_TAIL, new, rate))
    last = int(stats.binom.isf(_TAIL, new, rate))
    x = np.arange(max(first - 1, 0), min(last + 1, new) + 1, dtype=np.float64)
    low, high = rate_interval(passes_eff + x, n_eff + new, confidence)
    settled = (low >= target) | (high < target)
    return float(stats.binom.pmf(x, new, rate)[settled].sum())


def new_cases_to_settle(
    passes_eff: float,
    n_eff: float,
    target: float,
    probability: float = SETTLE_PROBABILITY,
    confidence: float = CONFIDENCE,
) -> float:
    """The smallest N (found by doubling, then bisection) of new single-attempt cases with
    `settle_probability` ≥ `probability` at the observed rate; NaN beyond MAX_NEW_CASES (the
    rate sits on, or too near, the target). The probability is not monotone in N (the binomial's
    lattice), so the bisection's answer meets the probability but may not be the very least."""
    if n_eff <= 0:
        return float("nan")
    rate = passes_eff / n_eff

    def enough(new: int) -> bool:
        return settle_probability(passes_eff, n_eff, rate, target, new, confidence) >= probability

    high = 1
    while not enough(high):
        if high >= MAX_NEW_CASES:
            return float("nan")
        high = min(high * 2, MAX_NEW_CASES)
    low = high // 2  # not enough (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return float(high)


def more_cases(
    passes: ArrayLike, n: ArrayLike, deff: ArrayLike, target: ArrayLike, undecided: ArrayLike
) -> Floats:
    """`new_cases_to_settle` per cell from its counts and design effect; NaN where the cell is
    not undecided."""
    rows = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (passes, n, deff)))
    targets = np.broadcast_to(np.asarray(target, dtype=np.float64), rows[0].shape)
    open_ = np.broadcast_to(np.asarray(undecided, dtype=bool), rows[0].shape)
    out = np.full(rows[0].shape, np.nan)
    for i in np.flatnonzero(open_):
        c, m, d = rows[0].flat[i], rows[1].flat[i], rows[2].flat[i]
        out.flat[i] = new_cases_to_settle(c / d, m / d, float(targets.flat[i]))
    return out
