"""Evidence needed, before a run: can the planned attempts decide anything at all?

With only passes, the (Clopper–Pearson) lower bound is (α/2)^(1/n) = 0.025^(1/n): 36 straight
passes to cross 0.90, 72 to cross 0.95. The repeats of a case count as new evidence only when
they vary; a model that passes everything gives no sign that they do (at temperature 0 they are
copies), so the evidence an all-pass model can show is its number of cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import pandas as pd

from margin.plan import Plan
from margin.stats.compare import detectable_difference
from margin.stats.intervals import rate_interval, straight_passes_to_cross


@dataclass
class _TaskPlan:
    target: float
    model: str
    cases: set[str] = field(default_factory=set)
    conditions: set[str] = field(default_factory=set)
    repeats: set[int] = field(default_factory=set)


def evidence_table(plan: Plan) -> pd.DataFrame:
    """Per suite × task: cases, conditions, repeats, attempts per condition cell and pooled,
    the lower bound an all-pass model would reach, whether it could cross the target, the
    cases needed, and the smallest difference the paired test could detect between two models
    (best case: every discordant attempt going one way; Holm over every pair of models) when
    attempts are independent and when a case's attempts are copies."""
    tasks: dict[tuple[str, str], _TaskPlan] = {}
    for attempt in plan.attempts:
        key = attempt.key
        target = plan.settings.target or attempt.suite.task_target(attempt.task)
        entry = tasks.setdefault((key.suite, key.task), _TaskPlan(target, key.model))
        if entry.model == key.model:  # every model runs the same attempts of a task
            entry.cases.add(key.case)
            entry.conditions.add(key.variant)
            entry.repeats.add(key.repeat)
    models = len({a.key.model for a in plan.attempts})
    comparisons = max(comb(models, 2), 1)
    rows = []
    for (suite, task), entry in tasks.items():
        cases = len(entry.cases)
        pooled = cases * len(entry.conditions) * len(entry.repeats)
        low = float(rate_interval(cases, cases)[0])
        rows.append(
            {
                "suite": suite,
                "task": task,
                "target": entry.target,
                "cases": cases,
                "conditions": len(entry.conditions),
                "repeats": len(entry.repeats),
                "per_condition": cases * len(entry.repeats),
                "pooled": pooled,
                "all_pass_low": low,
                "can_cross": low >= entry.target,
                "cases_needed": straight_passes_to_cross(entry.target),
                "detectable_independent": detectable_difference(pooled, comparisons),
                "detectable_copies": detectable_difference(cases, comparisons),
            }
        )
    return pd.DataFrame(rows)
