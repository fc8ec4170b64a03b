"""Adaptive repeats: which cells are still open after a round, from the journal alone.

Rounds grow by half (2, 3, 5, 8, 12, … repeats, up to the cap). After each round every
model × task × condition cell, and every pooled model × task cell, is judged by the
always-valid confidence sequence on its effective counts (clustered by case, like every
interval margin reports), and closes only where the report's interval on the same counts
decides it too (`closing_verdicts`), so no cell the loop closed reads "undecided" in the
report; an attempt gets its next repeat only while its condition cell or its task cell is open.
Decisions are re-derived from the journal each round, so a killed run resumes exactly, and
the same command gives the same attempts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from margin.execute.rounds import round_sizes
from margin.stats.cells import CONDITION, TASK, Targets, case_counts, interval_table
from margin.stats.frame import read_attempts
from margin.stats.intervals import UNDECIDED, rate_interval, verdicts
from margin.stats.sequential import sequential_verdicts


def closing_verdicts(
    passes: ArrayLike, n: ArrayLike, target: ArrayLike, alpha: float
) -> NDArray[np.object_]:
    """Per cell (effective counts): the verdict it closes with this round, or `undecided` (it
    stays open). A cell closes only when the confidence sequence decides it and the report's
    interval (`rate_interval`, on these same counts) reads the same verdict, so no cell the loop
    closed reads "undecided" in the report (the sequence is the wider, so it nearly always
    agrees). A cell the sequence only `settled` (within ±δ of the target, on neither side)
    stays open to the cap, where the report judges it like a fixed run: closing it once the
    report's interval happened to leave the target would be a fixed-n verdict read after
    optional stopping, wrong "falls short" 4.0% [2.9, 5.4] of the time at a true rate on a 0.9
    target in `bench/adaptive.py --cases 1000 --cells 1000`, against 2.4% for the fixed run."""
    sequence = sequential_verdicts(passes, n, target, alpha, delta=0.0)
    report = verdicts(*rate_interval(passes, n), target)
    return np.where(sequence == report, report, UNDECIDED).astype(object)


def decided_cells(
    journal: Path, targets: Targets, alpha: float, delta: float
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(decided condition cells, decided task cells): closed as crosses or falls short by the
    confidence sequence and the report's interval together (`closing_verdicts`). Everything
    else, unseen cells included, stays open. `delta` (the settings' indifference zone) no
    longer closes a cell: kept for the callers until the setting goes."""
    frame = read_attempts(journal).frame
    return (
        closed_cells(frame, CONDITION, targets, alpha),
        closed_cells(frame, TASK, targets, alpha),
    )


def closed_cells(
    frame: pd.DataFrame, keys: list[str], targets: Targets, alpha: float
) -> set[tuple[str, ...]]:
    """The cells (by `keys`) of the attempts `frame` that `closing_verdicts` closes."""
    if frame.empty:
        return set()
    cells = interval_table(case_counts(frame, keys), keys)
    target = [targets[(str(s), str(t))] for s, t in zip(cells["suite"], cells["task"], strict=True)]
    verdict = closing_verdicts(
        cells["passes"] / cells["deff"], cells["n"] / cells["deff"], target, alpha
    )
    closed = cells[verdict != UNDECIDED]
    return {tuple(str(v) for v in row) for row in closed[keys].itertuples(index=False)}


def expected_share(
    cases: int, cap: int, target: float, alpha: float, delta: float, cells: int = 400, seed: int = 0
) -> float:
    """The share of a fixed plan's attempts an adaptive run is expected to make on one cell of
    `cases` cases, simulated with true rates spread evenly over 0.5–1.0 and repeats that vary
    (at temperature 0 repeats are copies, so undecided cells run to the cap: the worst case).
    `delta` is unused, as in `decided_cells`."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 1.0, cells)
    draws = rng.random((cells, cap * cases)) < rates[:, None]
    passes = np.cumsum(draws, axis=1)
    used = np.full(cells, cap * cases)
    still_open = np.ones(cells, dtype=bool)
    for size in round_sizes(cap)[:-1]:
        n = size * cases
        verdict = closing_verdicts(
            passes[:, n - 1], np.full(cells, n), np.full(cells, target), alpha
        )
        closing = still_open & (verdict != UNDECIDED)
        used[closing] = n
        still_open &= ~closing
    return float(used.sum() / (cells * cap * cases))
