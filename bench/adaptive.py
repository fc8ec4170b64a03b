"""Adaptive repeats against fixed repeats, on simulated models of known rates.

    python bench/adaptive.py [--cells 2000] [--cases 10] [--cap 20] [--target 0.9]

Each simulated model × task cell has `cases` cases; its repeats vary independently (a model
sampled at temperature > 0). The fixed run makes cap repeats of every case and judges each cell
by the report's interval (`rate_interval`); the adaptive run makes rounds of 2, 3, 5, 8, …
repeats and closes a cell as the loop does (`closing_verdicts`: the confidence sequence decides
and the report's interval agrees), judging the rest at the cap like the fixed run.

    python bench/adaptive.py --cases 1000 --cells 1000

runs cells big enough (20,000 attempts at the cap) for the sequence to narrow within ±0.02 of
the target, where a `settled` stop would act (it no longer closes a cell).

1. Calls: true rates evenly over 0.5–1.0. Prints agreement with the fixed run where it decided
   and the ratio of calls, adaptive ÷ fixed.
2. Wrong verdicts near the target, pointwise: `cells` cells at each true rate target − 0.05 …
   target + 0.05 (the target itself included). A "crosses" is wrong when the true rate is below
   the target, a "falls short" when it is at or above it; each is a one-sided claim whose error
   should stay ≤ α/2 = 2.5%. Prints, per rate and run, the wrong count of n cells with its
   Clopper–Pearson 95% interval, and the same pooled over the band target ± 0.05.

Exits 1 if calls exceed 0.60 of the fixed run's or agreement is below 99%.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import stats

from margin.execute.adaptive import closing_verdicts
from margin.execute.rounds import round_sizes
from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED, rate_interval, verdicts

LIMIT = 0.60
OFFSETS = (-0.05, -0.03, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02, 0.03, 0.05)


def simulate(
    truth: np.ndarray, args: argparse.Namespace, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fixed verdicts, adaptive verdicts, attempts the adaptive run made) per cell."""
    cells, attempts = truth.size, args.cap * args.cases
    passes = np.cumsum(rng.random((cells, attempts)) < truth[:, None], axis=1, dtype=np.int32)
    target = np.full(cells, args.target)
    fixed = verdicts(*rate_interval(passes[:, -1], np.full(cells, attempts)), target)
    decision = np.array([UNDECIDED] * cells, dtype=object)
    used = np.full(cells, attempts)
    still_open = np.ones(cells, dtype=bool)
    for size in round_sizes(args.cap)[:-1]:
        n = size * args.cases
        verdict = closing_verdicts(passes[:, n - 1], np.full(cells, n), target, args.alpha)
        closing = still_open & (verdict != UNDECIDED)
        decision[closing], used[closing] = verdict[closing], n
        still_open &= ~closing
    decision[still_open] = fixed[still_open]
    return fixed, decision, used


def wrong(decision: np.ndarray, truth: np.ndarray, target: float) -> tuple[int, int, int, int]:
    """(wrong crosses, cells below the target, wrong falls short, cells at or above it)."""
    below = truth < target
    return (
        int(np.sum((decision == CROSSES) & below)),
        int(np.sum(below)),
        int(np.sum((decision == FALLS_SHORT) & ~below)),
        int(np.sum(~below)),
    )


def share(k: int, n: int) -> str:
    """`12/2,000 0.60% [0.31, 1.05]`: a count with its Clopper–Pearson 95% interval."""
    if n == 0:
        return "–"
    low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k:,}/{n:,} {k / n:.2%} [{low:.2%}, {high:.2%}]"


def calls(args: argparse.Namespace, rng: np.random.Generator) -> tuple[float, float]:
    truth = rng.uniform(0.5, 1.0, args.cells)
    fixed, decision, used = simulate(truth, args, rng)
    decided = fixed != UNDECIDED
    agreement = float(np.mean(decision[decided] == fixed[decided]))
    ratio = float(used.sum() / (args.cap * args.cases * args.cells))
    print(f"1. true rates evenly over 0.5–1.0, {args.cells:,} cells")
    print(f"   agreement with the fixed run where it decided: {agreement:.2%}")
    print(f"   calls adaptive ÷ fixed: {ratio:.3f} (limit {LIMIT:.2f})")
    return agreement, ratio


def near_target(args: argparse.Namespace, rng: np.random.Generator) -> None:
    print(f"2. wrong verdicts near the target, {args.cells:,} cells per true rate")
    print("   true rate | run      | wrong crosses (of cells < target) | wrong falls short")
    totals = {"fixed": np.zeros(4, dtype=np.int64), "adaptive": np.zeros(4, dtype=np.int64)}
    for offset in OFFSETS:
        p = round(args.target + offset, 4)
        fixed, decision, _ = simulate(np.full(args.cells, p), args, rng)
        for run, verdict in (("fixed", fixed), ("adaptive", decision)):
            counts = wrong(verdict, np.full(args.cells, p), args.target)
            totals[run] += counts
            crosses, falls = share(*counts[:2]), share(*counts[2:])
            print(f"   {p:<9g} | {run:<8} | {crosses:<33} | {falls}")
    for run, t in totals.items():
        print(f"   band {args.target:g} ± 0.05, {run}: wrong crosses {share(t[0], t[1])};"
              f" wrong falls short {share(t[2], t[3])}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    print(
        f"{args.cells:,} cells × {args.cases} cases, cap {args.cap} repeats, target"
        f" {args.target:g}, α {args.alpha:g}"
    )
    agreement, ratio = calls(args, rng)
    near_target(args, rng)
    if ratio > LIMIT or agreement < 0.99:
        sys.exit(1)


if __name__ == "__main__":
    main()
