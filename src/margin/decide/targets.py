"""Each task's reliability target and latency budget: the run's override, else the task's, else
the suite's. Pandas-free, so the runner's mid-run decisions and the scorer read them alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from margin.config import RunSettings
from margin.suite.tasks import Suite

if TYPE_CHECKING:
    from margin.stats.cells import Targets

Budgets = dict[tuple[str, str], float | None]


def task_targets(suites: list[Suite], settings: RunSettings) -> tuple[Targets, Budgets]:
    """Each task's reliability target (the run's override, the task's, else the suite's) and
    latency budget (the task's, else the run's)."""
    targets: dict[tuple[str, str], float] = {}
    budgets: Budgets = {}
    for suite in suites:
        for task in suite.tasks:
            key = (suite.suite, task.id)
            targets[key] = settings.target or suite.task_target(task)
            budgets[key] = task.max_p95_s if task.max_p95_s is not None else settings.max_p95_s
    return targets, budgets
