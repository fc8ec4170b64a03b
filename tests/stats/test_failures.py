"""Failures split by what production's guards saw: detected (a guard failed) and silent (every
guard passed, a reference check failed), per cell, against hand counts."""

from __future__ import annotations

import pytest

from margin.stats import CONDITION, MODEL, TASK, attempts_of, cell_table
from margin.stats.intervals import rate_interval
from tests.stats.records import record

TARGETS = {("s", "t"): 0.9}


def guarded(model: str, case: str, outcome: str, repeat: int = 0):  # type: ignore[no-untyped-def]
    """`pass`, `detected` (a guard failed), `silent` (guards passed, a reference check failed)
    or `old` (a failure recorded before guards were: unknown)."""
    passed = outcome == "pass"
    base = record(model, case, passed, repeat=repeat)
    guards = {"pass": True, "detected": False, "silent": True, "old": None}[outcome]
    return base.model_copy(update={"guards_passed": guards})


def test_hand_counted_detected_and_silent_failures_with_their_intervals() -> None:
    # 10 cases, one attempt each: 6 pass, 3 caught by a guard, 1 wrong but well-formed
    plan = ["pass"] * 6 + ["detected"] * 3 + ["silent"]
    records = [guarded("m", f"c{i}", outcome) for i, outcome in enumerate(plan)]
    frame = attempts_of(records).frame
    for keys in (CONDITION, TASK, MODEL):
        row = cell_table(frame, keys, TARGETS).iloc[0]
        assert (row["guarded_n"], row["detected"], row["silent"]) == (10, 3, 1)
        assert row["passes"] + row["detected"] + row["silent"] == row["n"]
        low, high = rate_interval(3, 10)
        assert (row["detected_low"], row["detected_high"]) == pytest.approx((low[()], high[()]))
        low, high = rate_interval(1, 10)
        assert (row["silent_low"], row["silent_high"]) == pytest.approx((low[()], high[()]))


def test_silent_failures_cluster_by_case_like_the_pass_rate() -> None:
    # 4 cases × 3 repeats; case c0 is silently wrong every time: 3 silent of 12 attempts, but
    # one case's worth of evidence, so the interval is wider than 3 independent failures give
    records = [
        guarded("m", f"c{i}", "silent" if i == 0 else "pass", repeat=r)
        for i in range(4)
        for r in range(3)
    ]
    row = cell_table(attempts_of(records).frame, TASK, TARGETS).iloc[0]
    assert (row["guarded_n"], row["silent"], row["detected"]) == (12, 3, 0)
    independent = rate_interval(3, 12)
    assert row["silent_high"] > independent[1][()]


def test_a_journal_from_before_guards_has_no_split() -> None:
    records = [guarded("m", "c0", "pass"), guarded("m", "c1", "old")]
    records = [r.model_copy(update={"guards_passed": None}) for r in records]
    row = cell_table(attempts_of(records).frame, TASK, TARGETS).iloc[0]
    assert (row["n"], row["passes"]) == (2, 1)
    assert row[["guarded_n", "silent", "detected"]].isna().all()
