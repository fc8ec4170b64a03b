"""The gate's check of silent failures: wrong answers that pass every production guard.

A detected failure can be retried, escalated or refused at run time; a silent one reaches the
user. `max_silent` bounds its rate with the same three states as a target: over the limit when
the interval's lower bound is above it, within when its upper bound is at most the limit,
insufficient evidence in between.
"""

from __future__ import annotations

from margin.gate.config import Finding, GateConfig, GateReport
from margin.results.rows import TaskRow
from margin.stats.numbers import rate_with_interval


def silent_limit(row: TaskRow, config: GateConfig) -> float | None:
    """The silent-failure limit that applies to `row`'s task, if any."""
    task = f"{row.suite}/{row.task}"
    return config.max_silent_by_task.get(task, config.max_silent)


def check_silent(row: TaskRow, config: GateConfig, report: GateReport) -> None:
    """Add a finding when `row`'s silent-failure rate is over its limit, or cannot be told."""
    limit = silent_limit(row, config)
    if limit is None:
        return
    task = f"{row.suite}/{row.task}"
    if row.guarded_n is None or row.silent is None:
        report.findings.append(
            Finding(row.model, task, "all", "–", "not recorded", f"≤ {limit:g}", None,
                    "silent failures: the journal predates guard outcomes; run it again",
                    insufficient=True)
        )  # fmt: skip
        return
    low, high = row.silent_low or 0.0, row.silent_high if row.silent_high is not None else 1.0
    if high <= limit:
        return
    now = "silent " + rate_with_interval(row.silent, row.guarded_n, low, high)
    over = low > limit
    report.findings.append(
        Finding(
            row.model,
            task,
            "all",
            "–",
            now,
            f"> {limit:g}" if over else f"straddles {limit:g}",
            None,
            "silent failures above the limit"
            if over
            else "silent failures undecided against the limit: more cases would tell",
            insufficient=not over,
        )
    )
