"""Is the candidate worse than the baseline, beyond noise? The gate's statistics, pure numpy.

A regression must be both significant (one-sided paired test) and material (an observed drop
of at least `min_drop`). The power calculation answers the other question a gate must ask:
how big a drop could this comparison have caught?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from margin.stats.compare import difference_deff
from margin.stats.intervals import one_sided_mcnemar, paired_difference_interval

POWER = 0.8


@dataclass(frozen=True)
class Comparison:
    """Baseline against now on one model × task (or condition)."""

    paired: bool
    """True: matched attempt keys (paired test); False: two independent samples."""
    pairs: int
    """Matched attempts (paired) or the smaller of the two samples (unpaired)."""
    base_rate: float
    now_rate: float
    drop: float
    """base_rate − now_rate."""
    low: float
    high: float
    """95% interval of the drop."""
    p_value: float
    """One-sided: the chance of a drop this large with no true change."""
    detectable: float
    """The smallest true drop this comparison catches with 80% power."""
    significant: bool
    material: bool

    @property
    def regression(self) -> bool:
        return self.significant and self.material


def detectable_drop(n_eff: float, discordance: float, alpha: float, min_drop: float) -> float:
    """Smallest true drop Δ caught with 80% power by "significant at `alpha` and observed drop
    ≥ `min_drop`", for `n_eff` effective pairs with discordance ψ (share of pairs that differ;
    at least Δ). The observed drop is ≈ Normal(Δ, (ψ − Δ²)/n); it must pass
    max(min_drop, z_α·√(ψ/n)) (the one-sided critical drop under no change)."""
    if n_eff <= 0:
        return float("nan")
    z_alpha, z_beta = stats.norm.isf(alpha), stats.norm.isf(1 - POWER)

    def power_met(delta: float) -> bool:
        psi = max(discordance, delta)
        critical = max(min_drop, z_alpha * np.sqrt(psi / n_eff))
        spread = np.sqrt(max(psi - delta * delta, 1e-12) / n_eff)
        return bool(delta >= critical + z_beta * spread)

    low, high = 0.0, 1.0
    if not power_met(high):
        return float("nan")
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (low, middle) if power_met(middle) else (middle, high)
    return high


def paired_regression(
    base: np.ndarray, now: np.ndarray, cases: np.ndarray, alpha: float, min_drop: float
) -> Comparison:
    """Paired: `base` and `now` are 0/1 outcomes of the same attempt keys; `cases` clusters them."""
    n = len(base)
    losses = float(np.sum((base == 1) & (now == 0)))
    gains = float(np.sum((base == 0) & (now == 1)))
    both = float(np.sum((base == 1) & (now == 1)))
    neither = n - losses - gains - both
    deff = difference_deff(now - base, cases) if n else 1.0
    low, high = paired_difference_interval(both / deff, losses / deff, gains / deff, neither / deff)
    drop = (losses - gains) / n if n else 0.0
    p_value = float(one_sided_mcnemar(losses / deff, gains / deff))
    return Comparison(
        paired=True,
        pairs=n,
        base_rate=float(base.mean()) if n else float("nan"),
        now_rate=float(now.mean()) if n else float("nan"),
        drop=drop,
        low=float(low),
        high=float(high),
        p_value=p_value,
        detectable=detectable_drop(n / deff, (losses + gains) / n if n else 0.0, alpha, min_drop),
        significant=p_value < alpha,
        material=drop >= min_drop,
    )


def unpaired_regression(
    base_passes: float,
    base_n: float,
    now_passes: float,
    now_n: float,
    alpha: float,
    min_drop: float,
) -> Comparison:
    """Two independent samples (keys differ): a one-sided score test on effective counts."""
    base_rate, now_rate = base_passes / base_n, now_passes / now_n
    result = test_proportions_2indep(
        base_passes, base_n, now_passes, now_n, method="score", alternative="larger"
    )
    p_value = float(result.pvalue)
    drop = base_rate - now_rate
    low, high = confint_proportions_2indep(
        base_passes, base_n, now_passes, now_n, method="newcomb", compare="diff"
    )
    pooled = (base_passes + now_passes) / (base_n + now_n)
    n_eff = 1 / (1 / base_n + 1 / now_n)
    return Comparison(
        paired=False,
        pairs=int(min(base_n, now_n)),
        base_rate=base_rate,
        now_rate=now_rate,
        drop=drop,
        low=float(low),
        high=float(high),
        p_value=p_value,
        # Var(drop) = p(1 − p)·(1/n₁ + 1/n₂) = ψ/n_eff with ψ = p(1 − p)
        detectable=detectable_drop(n_eff, pooled * (1 - pooled), alpha, min_drop),
        significant=p_value < alpha,
        material=drop >= min_drop,
    )
