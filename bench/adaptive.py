"""Adaptive repeats against fixed repeats, on simulated models of known rates.

    python bench/adaptive.py [--cells 2000] [--cases 10] [--cap 20] [--target 0.9]

Each simulated model × task cell has `cases` cases and a true pass rate drawn evenly from
0.5–1.0; its repeats vary independently (a model sampled at temperature > 0). The fixed run
makes cap repeats of every case and judges each cell by its Wilson interval; the adaptive run
makes rounds of 2, 3, 5, 8, … repeats and stops a cell when the always-valid confidence
sequence decides it, judging the rest at the cap like the fixed run. Prints the decisions'
agreement, the wrong-decision rate, and last the ratio of calls, adaptive ÷ fixed. Exits 1
above 0.60 (or if agreement < 99%).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from margin.execute.adaptive import round_sizes
from margin.stats.intervals import UNDECIDED, verdicts, wilson_interval
from margin.stats.sequential import sequential_verdicts

LIMIT = 0.60


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--delta", type=float, default=0.02)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    truth = rng.uniform(0.5, 1.0, args.cells)
    attempts = args.cap * args.cases
    passes = np.cumsum(rng.random((args.cells, attempts)) < truth[:, None], axis=1)
    target = np.full(args.cells, args.target)
    low, high = wilson_interval(passes[:, -1], np.full(args.cells, attempts))
    fixed = verdicts(low, high, target)
    decision = np.array([UNDECIDED] * args.cells, dtype=object)
    used = np.full(args.cells, attempts)
    still_open = np.ones(args.cells, dtype=bool)
    for size in round_sizes(args.cap)[:-1]:
        n = size * args.cases
        verdict = sequential_verdicts(
            passes[:, n - 1], np.full(args.cells, n), target, delta=args.delta
        )
        closing = still_open & (verdict != UNDECIDED)
        decision[closing], used[closing] = verdict[closing], n
        still_open &= ~closing
    decision[still_open] = fixed[still_open]
    decided = fixed != UNDECIDED
    agreement = float(np.mean(decision[decided] == fixed[decided]))
    wrong = float(np.mean(
        ((decision == "crosses") & (truth < args.target - args.delta))
        | ((decision == "falls short") & (truth > args.target))
    ))  # fmt: skip
    ratio = used.sum() / (attempts * args.cells)
    print(
        f"{args.cells:,} cells × {args.cases} cases, cap {args.cap} repeats, target {args.target:g}"
    )
    print(f"agreement with the fixed run where it decided: {agreement:.2%}")
    print(f"wrong decisions: {wrong:.2%}")
    print(f"calls adaptive ÷ fixed: {ratio:.3f} (limit {LIMIT:.2f})")
    if ratio > LIMIT or agreement < 0.99:
        sys.exit(1)


if __name__ == "__main__":
    main()
