"""Intervals and tests, vectorised over cells (numpy arrays in, arrays out).

Every shown rate and every verdict reads `rate_interval`: the Clopper–Pearson (exact binomial)
interval on the cell's effective counts. A verdict is a one-sided claim ("crosses": the rate is at
least the target; "falls short": it is below), so each of its two bounds must be wrong at most
α/2 = 2.5% at *every* true rate, not on average over rates. Clopper–Pearson's bounds guarantee
that by construction; Wilson's do not (exactly over all outcomes its two-sided coverage is 90.4%
at n = 10, p = 0.99 and 93.5% at n = 50, p = 0.5). tests/stats/test_coverage.py checks it exactly
for single cells and by seeded simulation for pooled cells with repeats.

The distributions come from scipy and statsmodels; this module only chooses and combines them.
scipy.stats and statsmodels take a second to import and most commands never reach the functions
that need them, so those functions import them; scipy.special (fast) is imported here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

Floats = NDArray[np.float64]
CONFIDENCE = 0.95
CROSSES, FALLS_SHORT, UNDECIDED = "crosses", "falls short", "undecided"
SHRINK_EVENTS = 2.0
"""κ: how many events of the rarer outcome the intra-class correlation's estimate must
outweigh before repeats of a case count as independent evidence (see `design_effect`)."""
MAX_STRAIGHT_PASSES = 10**7
"""What `straight_passes_to_cross` reports for a target no run can reach (1 or more)."""


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile for `confidence` (1.96 at 95%)."""
    return float(-special.ndtri((1 - confidence) / 2))  # scipy's norm.isf, without scipy.stats


def wilson_interval(
    passes: ArrayLike, n: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[Floats, Floats]:
    """Wilson score interval for `passes` of `n` (n may be an effective, non-integer n).

    5/5 is [0.57, 1.0], never [1.0, 1.0]; n = 0 gives [0, 1].
    """
    # statsmodels takes ~0.3 s to import and only comparisons of several models need Wilson
    from statsmodels.stats.proportion import proportion_confint

    passes_ = np.asarray(passes, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    empty = n_ <= 0
    safe_n = np.where(empty, 1.0, n_)
    low, high = proportion_confint(
        np.where(empty, 0.0, passes_), safe_n, alpha=1 - confidence, method="wilson"
    )
    low = np.where(empty, 0.0, np.clip(low, 0.0, 1.0))
    high = np.where(empty, 1.0, np.clip(high, 0.0, 1.0))
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def clopper_pearson_interval(
    passes: ArrayLike, n: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[Floats, Floats]:
    """Clopper–Pearson interval for `passes` of `n`, from beta quantiles (α = 1 − confidence):
    low = B⁻¹(α/2; x, n − x + 1), 0 when x = 0; high = B⁻¹(1 − α/2; x + 1, n − x), 1 when x = n.

    Each bound alone is a one-sided 1 − α/2 bound: P(low > p) ≤ α/2 and P(high < p) ≤ α/2 at
    every true rate p. The beta form accepts non-integer (effective) counts. 5/5 gives
    low = 0.025^(1/5) = 0.478; n = 0 gives [0, 1].
    """
    n_ = np.asarray(n, dtype=np.float64)
    empty = n_ <= 0
    safe_n = np.where(empty, 1.0, n_)
    x = np.clip(np.asarray(passes, dtype=np.float64), 0.0, safe_n)
    tail = (1 - confidence) / 2
    some, short = x > 0, x < safe_n
    # the where() keeps the beta's shape parameters positive; the edge cases are set below
    low = special.betaincinv(np.where(some, x, 1.0), safe_n - x + 1, tail)
    high = special.betaincinv(x + 1, np.where(short, safe_n - x, 1.0), 1 - tail)
    low = np.where(empty | ~some, 0.0, low)
    high = np.where(empty | ~short, 1.0, high)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def rate_interval(
    passes: ArrayLike, n: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[Floats, Floats]:
    """The interval every cell's rate is shown with and every verdict is read from:
    Clopper–Pearson, so that "crosses" and "falls short" are each wrong at most α/2 at every
    true rate (see the module docstring)."""
    return clopper_pearson_interval(passes, n, confidence)


def share_interval(total: ArrayLike, cases: ArrayLike) -> tuple[Floats, Floats]:
    """The 95% interval of a mean over `cases` independent cases of values in [0, 1] whose sum
    is `total` (`rate_interval` on (total, cases); `margin.stats.shares` says why a bounded
    mean may be treated as a coin with that mean). n = 0 gives [0, 1]."""
    return rate_interval(total, cases)


def design_effect(
    n: ArrayLike,
    total: ArrayLike,
    clusters: ArrayLike,
    sum_sq_size: ArrayLike,
    sum_sq_share: ArrayLike,
    sum_sq: ArrayLike | None = None,
    events: ArrayLike | None = None,
) -> Floats:
    """How much clustering by case inflates the variance of a pooled pass rate: 1 + (m̃ − 1)·ρ.

    Per cell: `n` attempts, the `total` of the outcomes (passes, for a pass indicator),
    `clusters` (cases), Σ m_i² (`sum_sq_size`), Σ_i (Σ_j y_ij)²/m_i (`sum_sq_share`) and
    Σ y² (`sum_sq`; the total itself for a 0/1 outcome). ρ is the one-way ANOVA intra-class
    correlation of the outcome, clipped to [0, 1]; m̃ = Σ m_i² / n, the size-weighted
    mean attempts per case. When every attempt of every case agrees with the others of its case
    (no within-case variation: always the case at temperature 0 without noise), the data cannot
    show that repeats are independent evidence, so ρ = 1 and the evidence is the cases.

    ρ is learnt from the rarer outcome (`events`: min(passes, fails) by default): from one
    flaky failure among 150 passes the estimate says "independent" while a population with a
    few always-failing cases can easily show exactly that. So the estimate is shrunk toward 1
    with the weight of SHRINK_EVENTS events, ρ̃ = (f·ρ̂ + κ)/(f + κ): continuous from the
    all-agree case, negligible once failures are plentiful (the plain ANOVA estimate let Wilson's
    coverage fall to 88%). With `rate_interval` on the effective counts, seeded beta-binomial
    simulations (tests/stats/test_coverage.py: 10–60 cases, 3–5 repeats, p 0.5–0.99, ICC
    0.05–0.6) keep each one-sided error ≤ α/2: about 2.0–2.2% at worst (p = 0.5, 60 cases).
    One case, or one attempt per case, has no clustering to correct (deff = 1).
    """
    n_ = np.asarray(n, dtype=np.float64)
    c = np.asarray(total, dtype=np.float64)
    squares = c if sum_sq is None else np.asarray(sum_sq, dtype=np.float64)
    g = np.asarray(clusters, dtype=np.float64)
    sq_size = np.asarray(sum_sq_size, dtype=np.float64)
    sq_share = np.asarray(sum_sq_share, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = c / n_
        between = np.maximum(sq_share - n_ * p * p, 0.0)
        within = np.maximum(squares - sq_share, 0.0)
        msb = between / (g - 1)
        msw = within / (n_ - g)
        m0 = (n_ - sq_size / n_) / (g - 1)
        rho = (msb - msw) / (msb + (m0 - 1) * msw)
        rho = np.where(within <= 1e-12, 1.0, rho)
        rho = np.clip(np.nan_to_num(rho, nan=1.0), 0.0, 1.0)
        f = np.minimum(c, n_ - c) if events is None else np.asarray(events, dtype=np.float64)
        rho = (f * rho + SHRINK_EVENTS) / (f + SHRINK_EVENTS)
        m_tilde = sq_size / n_
    deff = 1 + (m_tilde - 1) * rho
    return np.where((g <= 1) | (n_ <= g) | (n_ <= 0), 1.0, np.maximum(deff, 1.0))


def verdicts(low: ArrayLike, high: ArrayLike, target: ArrayLike) -> NDArray[np.object_]:
    """`crosses` when the lower bound reaches the target, `falls short` when the upper bound is
    below it, else `undecided`."""
    low_ = np.asarray(low, dtype=np.float64)
    high_ = np.asarray(high, dtype=np.float64)
    target_ = np.asarray(target, dtype=np.float64)
    return np.where(
        low_ >= target_, CROSSES, np.where(high_ < target_, FALLS_SHORT, UNDECIDED)
    ).astype(object)


def effective_n_to_decide(
    rate: ArrayLike, target: ArrayLike, confidence: float = CONFIDENCE
) -> Floats:
    """About the effective n at which the interval around `rate` would leave `target` out.

    A normal (score) approximation, not the exact interval's crossing point: the score interval
    is the set of t with |p̂ − t| ≤ z·√(t(1 − t)/n), so it excludes the target once
    n ≥ z²·t(1 − t)/(p̂ − t)². It only sizes `more_attempts` (a coin flip's chance to settle,
    the rough figure); `stats.settle` counts new cases exactly with `rate_interval`. Infinite
    when the rate equals the target.
    """
    p = np.asarray(rate, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    z = z_value(confidence)
    with np.errstate(divide="ignore"):
        return np.asarray(z * z * t * (1 - t) / (p - t) ** 2, dtype=np.float64)


def straight_passes_to_cross(target: float, confidence: float = CONFIDENCE) -> int:
    """Passes in a row a model needs before its lower bound reaches `target`: n/n's
    Clopper–Pearson lower bound is (α/2)^(1/n), so n ≥ ln(α/2)/ln(target): 36 at 0.90, 72 at
    0.95. 1 when the target is 0 or below; never for a target of 1 or more (a large number)."""
    if target <= 0:
        return 1
    if target >= 1:
        return MAX_STRAIGHT_PASSES
    needed = np.log((1 - confidence) / 2) / np.log(target)
    return int(min(max(np.ceil(needed - 1e-9), 1), MAX_STRAIGHT_PASSES))


def pass_hat_k(passes: ArrayLike, n: ArrayLike, k: int) -> Floats:
    """tau-bench's pass^k for one case: C(c, k) / C(n, k), the chance k draws all pass."""
    return np.asarray(special.comb(passes, k) / special.comb(n, k), dtype=np.float64)


def pass_at_k(passes: ArrayLike, n: ArrayLike, k: int) -> Floats:
    """pass@k for one case: 1 − C(n − c, k) / C(n, k), the chance one of k draws passes."""
    n_ = np.asarray(n, dtype=np.float64)
    fails = n_ - np.asarray(passes, dtype=np.float64)
    return np.asarray(1 - special.comb(fails, k) / special.comb(n_, k), dtype=np.float64)


def mcnemar_mid_p(only_first: ArrayLike, only_second: ArrayLike) -> Floats:
    """Two-sided mid-p McNemar test on the discordant pairs (b, c): 2·[P(X ≤ m) − P(X = m)/2]
    with X ~ Binomial(b + c, ½) and m = min(b, c), capped at 1; 1 when there are none.

    Counts are rounded to whole pairs (an effective count after a design effect may not be).
    """
    from scipy import stats  # ~1 s to import; only comparisons of several models get here

    b = np.rint(np.asarray(only_first, dtype=np.float64))
    c = np.rint(np.asarray(only_second, dtype=np.float64))
    total = b + c
    smaller = np.minimum(b, c)
    p = 2 * (stats.binom.cdf(smaller, total, 0.5) - 0.5 * stats.binom.pmf(smaller, total, 0.5))
    return np.asarray(np.where(total > 0, np.minimum(p, 1.0), 1.0), dtype=np.float64)


def paired_difference_interval(
    both: ArrayLike,
    only_first: ArrayLike,
    only_second: ArrayLike,
    neither: ArrayLike,
    confidence: float = CONFIDENCE,
) -> tuple[Floats, Floats]:
    """Newcombe's hybrid score interval (1998, method 10) for p₁ − p₂ on paired outcomes.

    The counts may be effective (divided by a design effect). It stays inside [−1, 1] and does
    not collapse to a point when the pairs all agree.
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (both, only_first, only_second, neither))
    n = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = (a + b) / n
        p2 = (a + c) / n
        l1, u1 = wilson_interval(a + b, n, confidence)
        l2, u2 = wilson_interval(a + c, n, confidence)
        denominator = np.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        phi = np.where(denominator > 0, (a * d - b * c) / denominator, 0.0)
        diff = p1 - p2
        low = diff - np.sqrt(
            np.maximum((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0)
        )
        high = diff + np.sqrt(
            np.maximum((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0)
        )
    empty = n <= 0
    return (
        np.asarray(np.where(empty, -1.0, np.clip(low, -1, 1)), dtype=np.float64),
        np.asarray(np.where(empty, 1.0, np.clip(high, -1, 1)), dtype=np.float64),
    )


def one_sided_mcnemar(losses: ArrayLike, gains: ArrayLike) -> Floats:
    """One-sided exact McNemar test that losses outnumber gains: P(X ≥ b) with
    X ~ Binomial(b + c, ½); 1 when there are no discordant pairs. Counts are rounded.

    Exact rather than mid-p: a gate that fails CI on noise costs more than one that needs a few
    more attempts, and in simulation the one-sided mid-p test alarmed 5.7–5.9% at α = 0.05.
    """
    from scipy import stats  # ~1 s to import; only gates against a baseline get here

    b = np.rint(np.asarray(losses, dtype=np.float64))
    c = np.rint(np.asarray(gains, dtype=np.float64))
    total = b + c
    p = stats.binom.sf(b - 1, total, 0.5)
    return np.asarray(np.where(total > 0, np.minimum(p, 1.0), 1.0), dtype=np.float64)
