"""Early stopping over cases (`run.early_stop`): a model stops getting a task's cases once its
model × task cell is decided.

Each task's cases run in a seeded random order — the same for every model, so a model that
stopped early holds a subset of the cases of one that ran on, and paired comparisons stay
paired — in rounds of 4, 6, 9, 14, 21, 32, … cases (every variant and repeat of a case runs
with it). After each round a model × task cell closes when the always-valid confidence
sequence of adaptive repeats decides it and the report's own interval agrees
(`closing_verdicts`): a model that fails its first cases of a task at a 0.9 target is
"falls short" after a few of them, while one that passes everything runs on (the sequence
needs about 55 straight passes to call 0.9 crossed, the report's interval 35).

A round's decisions read only the journal's records of the cases of the rounds before it, so
a killed run, resumed, takes exactly the decisions it would have taken: the same command gives
the same attempts. Early stopping needs every case of a task in one run directory: it does not
mix with `--shard`, nor (for now) with adaptive repeats.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from margin.execute.adaptive import closed_cells
from margin.execute.delivery import RunStats
from margin.journal.records import JournalState, journal_state
from margin.plan import Attempt
from margin.stats.cells import TASK, Targets
from margin.stats.frame import read_attempts

FIRST_ROUND = 4
GROWTH = 1.5

CaseId = tuple[str, str, str]
"""(suite, task, case)."""
Batch = Callable[[Sequence[Attempt], JournalState, int], RunStats]
"""Runs pending attempts: (pending, the journal's state before, attempts already done)."""


@dataclass(frozen=True)
class CaseRounds:
    """What a run's case rounds did: the last round's totals, whether every round ran through,
    and how many of the plan's attempts were never due (their cell was decided first)."""

    stats: RunStats
    whole: bool
    stopped: int


def case_rounds(cases: int) -> list[int]:
    """Cases reached after each round: 4, 6, 9, 14, 21, 32, … up to `cases`."""
    sizes = [min(FIRST_ROUND, cases)]
    while sizes[-1] < cases:
        sizes.append(min(cases, max(sizes[-1] + 1, math.ceil(sizes[-1] * GROWTH))))
    return sizes


def case_ranks(attempts: Sequence[Attempt], seed: int) -> dict[CaseId, int]:
    """Each case's place in its task's seeded random order (0 first): a stable hash of the
    run's seed and the case, independent of the model, so every model gets the same order."""
    by_task: dict[tuple[str, str], set[str]] = {}
    for attempt in attempts:
        by_task.setdefault((attempt.key.suite, attempt.key.task), set()).add(attempt.key.case)
    ranks: dict[CaseId, int] = {}
    for (suite, task), cases in by_task.items():

        def draw(case: str, suite: str = suite, task: str = task) -> str:
            return hashlib.sha256(f"{seed}|{suite}|{task}|{case}".encode()).hexdigest()

        for rank, case in enumerate(sorted(cases, key=draw)):
            ranks[(suite, task, case)] = rank
    return ranks


def decided_tasks(
    journal: Path, ranks: dict[CaseId, int], reached: int, targets: Targets, alpha: float
) -> set[tuple[str, ...]]:
    """The model × task cells closed (`closed_cells`) by the journal's bare records of the cases
    ranked below `reached`: the rounds done, whatever of a later round a killed run left."""
    frame = read_attempts(journal).frame
    if frame.empty:
        return set()
    columns = (frame[name].astype(str) for name in ("suite", "task", "case"))
    cases = zip(*columns, strict=True)
    seen = np.fromiter((ranks.get(c, reached) < reached for c in cases), bool, len(frame))
    return closed_cells(frame[seen], TASK, targets, alpha)


def run_case_rounds(
    attempts: Sequence[Attempt],
    journal: Path,
    targets: Targets,
    alpha: float,
    seed: int,
    done: Callable[[], tuple[JournalState, set[str]]],
    batch: Batch,
) -> CaseRounds:
    """Run `attempts` round by round over their cases, each round only for the model × task
    cells still open. `done` reads the journal's state and the keys not to run again."""
    ranks = case_ranks(attempts, seed)
    sizes = case_rounds(max(ranks.values(), default=0) + 1)
    stats: RunStats | None = None
    reached: set[str] = set()  # the keys some round had due
    previous = 0
    for size in sizes:
        closed = decided_tasks(journal, ranks, previous, targets, alpha) if previous else set()
        due = [
            a
            for a in attempts
            if ranks[_case(a)] < size and (a.key.model, a.key.suite, a.key.task) not in closed
        ]
        reached.update(str(a.key) for a in due)
        before, finished = done()
        pending = [a for a in due if str(a.key) not in finished]
        previous = size
        if not pending and stats is not None:
            continue
        stats = batch(pending, before, len(due) - len(pending))
        if stats.halted or stats.budget_stopped or stats.not_run:
            return CaseRounds(stats, False, 0)
    assert stats is not None  # the first round always runs
    return CaseRounds(stats, True, len(attempts) - len(reached))


def _case(attempt: Attempt) -> CaseId:
    return (attempt.key.suite, attempt.key.task, attempt.key.case)


def finished_now(journal: Path, retry_errors: bool) -> tuple[JournalState, set[str]]:
    """The journal's state and the keys a round must not run again."""
    state = journal_state(journal)
    return state, state.finished(retry_errors)
