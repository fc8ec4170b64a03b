"""Adaptive repeats: which cells are still open after a round, from the journal alone.

Rounds grow by half (2, 3, 5, 8, 12, … repeats, up to the cap). After each round every
model × task × condition cell, and every pooled model × task cell, is judged by the
always-valid confidence sequence on its effective counts (clustered by case, like every
interval margin reports); an attempt gets its next repeat only while its condition cell or
its task cell is undecided. Decisions are re-derived from the journal each round, so a killed
run resumes exactly, and the same command gives the same attempts.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from margin.stats.cells import CONDITION, TASK, Targets, case_counts, interval_table
from margin.stats.frame import read_attempts
from margin.stats.intervals import UNDECIDED
from margin.stats.sequential import sequential_verdicts

FIRST_ROUND = 2
GROWTH = 1.5


def round_sizes(cap: int) -> list[int]:
    """Repeats reached after each round: 2, 3, 5, 8, 12, … capped."""
    sizes = [min(FIRST_ROUND, cap)]
    while sizes[-1] < cap:
        sizes.append(min(cap, max(sizes[-1] + 1, math.ceil(sizes[-1] * GROWTH))))
    return sizes


def decided_cells(
    journal: Path, targets: Targets, alpha: float, delta: float
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(decided condition cells, decided task cells): closed by the confidence sequence as
    crosses, falls short or settled. Everything else, unseen cells included, stays open."""
    frame = read_attempts(journal).frame
    return (
        _decided(frame, CONDITION, targets, alpha, delta),
        _decided(frame, TASK, targets, alpha, delta),
    )


def _decided(
    frame: pd.DataFrame, keys: list[str], targets: Targets, alpha: float, delta: float
) -> set[tuple[str, ...]]:
    if frame.empty:
        return set()
    cells = interval_table(case_counts(frame, keys), keys)
    target = [targets[(str(s), str(t))] for s, t in zip(cells["suite"], cells["task"], strict=True)]
    verdict = sequential_verdicts(
        cells["passes"] / cells["deff"], cells["n"] / cells["deff"], target, alpha, delta
    )
    closed = cells[verdict != UNDECIDED]
    return {tuple(str(v) for v in row) for row in closed[keys].itertuples(index=False)}
