"""The gate against a baseline: paired by attempt key where both journals are at hand (else two
independent samples), a one-sided test with the power it had, and hard breaks per case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from margin.decide.regression import Comparison, paired_regression, unpaired_regression
from margin.gate.config import Finding, GateConfig, GateReport
from margin.journal.records import JOURNAL_NAME
from margin.results.document import Results
from margin.results.rows import TaskRow
from margin.stats.frame import read_attempts
from margin.stats.numbers import interval, percent


def _outcomes(folder: Path) -> pd.DataFrame | None:
    """Judged outcomes by attempt key, or None when only a results.json was given."""
    journal = (folder if folder.is_dir() else folder.parent) / JOURNAL_NAME
    if not journal.exists():
        return None
    frame = read_attempts(journal).frame
    frame = frame[frame["judged"]]
    columns = ["model", "suite", "task", "case", "variant", "repeat"]
    out = frame[[*columns, "condition", "passed"]].copy()
    for name in [*columns[:-1], "condition"]:
        out[name] = out[name].astype(str)
    return out


def check_regressions(
    run: Path,
    now: Results,
    baseline: Path,
    base: Results,
    rows: list[TaskRow],
    config: GateConfig,
    report: GateReport,
) -> None:
    now_frame, base_frame = _outcomes(run), _outcomes(baseline)
    base_rows = {(t.model, t.suite, t.task): t for t in base.tasks}
    for row in rows:
        task = f"{row.suite}/{row.task}"
        before = base_rows.get((row.model, row.suite, row.task))
        if before is None:
            report.notes.append(f"{row.model} on {task}: not in the baseline, not compared")
            continue
        if before.n == 0 or row.n == 0:
            side = "the baseline" if before.n == 0 else "this run"
            report.notes.append(f"{row.model} on {task}: no judged attempt in {side}, not compared")
            continue
        merged = _pairs(now_frame, base_frame, row)
        if merged is not None and len(merged) > 0:
            comparison = paired_regression(
                merged["passed_base"].to_numpy(),
                merged["passed_now"].to_numpy(),
                merged["case"].to_numpy(),
                config.alpha,
                config.min_drop,
            )
            _hard_breaks(merged, row, report)
        else:
            report.notes.append(
                f"warning: {row.model} on {task}: no matching attempt keys in the baseline;"
                " compared as two independent samples (less power)"
            )
            comparison = unpaired_regression(
                before.passes / before.deff,
                before.n / before.deff,
                row.passes / row.deff,
                row.n / row.deff,
                config.alpha,
                config.min_drop,
            )
        _judge(row, comparison, config, report)


def _pairs(
    now: pd.DataFrame | None, base: pd.DataFrame | None, row: TaskRow
) -> pd.DataFrame | None:
    if now is None or base is None:
        return None
    keys = ["suite", "task", "case", "variant", "repeat"]

    def select(frame: pd.DataFrame) -> pd.DataFrame:
        mask = (
            (frame["model"] == row.model)
            & (frame["suite"] == row.suite)
            & (frame["task"] == row.task)
        )
        return frame.loc[mask, [*keys, "condition", "passed"]]

    return select(base).merge(select(now), on=[*keys, "condition"], suffixes=("_base", "_now"))


def _hard_breaks(merged: pd.DataFrame, row: TaskRow, report: GateReport) -> None:
    """Every case that passed all its (≥ 2) compared attempts before and fails all of them now."""
    per_case = merged.groupby("case", sort=True).agg(
        n=("passed_base", "size"), base=("passed_base", "sum"), now=("passed_now", "sum"),
        conditions=("condition", lambda s: ", ".join(sorted(set(s)))),
    )  # fmt: skip
    broken = per_case[
        (per_case["n"] >= 2) & (per_case["base"] == per_case["n"]) & (per_case["now"] == 0)
    ]
    for case, item in broken.iterrows():
        n = int(item["n"])
        report.findings.append(
            Finding(
                row.model,
                f"{row.suite}/{row.task}",
                str(item["conditions"]),
                f"case {case}: {n}/{n}",
                f"0/{n}",
                "every attempt flipped",
                None,
                "hard break",
            )
        )


def _judge(row: TaskRow, c: Comparison, config: GateConfig, report: GateReport) -> None:
    task = f"{row.suite}/{row.task}"
    kind = "paired" if c.paired else "unpaired"
    report.notes.append(
        f"{row.model} on {task}: {kind} comparison of {c.pairs:,} attempts can detect a drop of"
        f" {percent(c.detectable) if np.isfinite(c.detectable) else 'no size'} (80% power,"
        f" α {config.alpha:g}, min_drop {config.min_drop:g})"
    )
    difference = (
        f"−{percent(c.drop)} {interval(-c.high, -c.low)}"
        if c.drop >= 0
        else f"+{percent(-c.drop)} {interval(-c.high, -c.low)}"
    )
    if c.regression:
        rule, insufficient = "regression: significant and ≥ min_drop", False
    elif not np.isfinite(c.detectable) or c.detectable > 2 * config.min_drop:
        rule = (
            "comparison too small: it has less than 80% power to detect a drop of"
            f" 2 × min_drop ({percent(2 * config.min_drop)}); more attempts in both runs raise"
            " its power"
        )
        insufficient = True
    else:
        return
    report.findings.append(
        Finding(
            row.model,
            task,
            "all",
            percent(c.base_rate),
            percent(c.now_rate),
            difference,
            c.p_value,
            rule,
            insufficient=insufficient,
        )
    )
