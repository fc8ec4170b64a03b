"""The gate: does each gated model still clear its bar, and did this change make it worse?

Reads results.json and the journals (never a model). Exit codes: 0 pass; 1 a gated model ×
task does not cross its target, breaks a latency or cost limit, or regresses against the
baseline; 2 a usage error (one line); 3 insufficient evidence (undecided cells, or a comparison
too small to detect the configured regression) — unless `on_undecided: pass`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from margin.decide.regression import Comparison, paired_regression, unpaired_regression
from margin.errors import ConfigError, UserError
from margin.results.document import RESULTS_NAME, Results, read_results
from margin.results.rows import JudgeRow, TaskRow
from margin.stats.frame import read_attempts
from margin.stats.intervals import effective_n_to_decide
from margin.stats.numbers import interval, percent, rate_with_interval, seconds
from margin.suite.source import read_yaml, validate_model

PASS, FAIL, USAGE, INSUFFICIENT = 0, 1, 2, 3


class GateConfig(BaseModel):
    """gate.yaml: what is gated and how strictly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    models: list[str] | None = None
    """Gated models (default: every model of the run)."""
    tasks: list[str] | None = None
    """Gated tasks as `suite/task` (default: every task)."""
    targets: dict[str, float] = {}
    """Per-task target overrides, `suite/task: 0.95`."""
    max_p95_s: float | None = Field(default=None, gt=0)
    """Fail a model × task whose p95 latency is above this many seconds."""
    max_cost_per_1k: float | None = Field(default=None, ge=0)
    """Fail a model × task whose cost per 1,000 executions is above this many dollars."""
    min_drop: float = Field(default=0.03, ge=0, lt=1)
    """A regression must drop the pass rate by at least this much (and be significant)."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """Significance level of the one-sided regression test."""
    on_undecided: Literal["fail", "pass"] = "fail"
    """`fail`: undecided evidence exits 3; `pass`: it exits 0 with a warning."""


def load_gate_config(path: Path | None) -> GateConfig:
    """gate.yaml, validated like every config (file, line and field on an error)."""
    if path is None:
        return GateConfig()
    source = read_yaml(Path(path), ConfigError)
    if not isinstance(source.data, dict):
        raise source.error("a gate file is a mapping (models, tasks, targets, …)", (), ConfigError)
    return validate_model(GateConfig, source, ConfigError)


@dataclass(frozen=True)
class Finding:
    """One reason the gate did not pass: one table row."""

    model: str
    task: str
    condition: str
    baseline: str
    now: str
    difference: str
    p_value: float | None
    rule: str
    insufficient: bool = False
    """True: not enough evidence (exit 3), rather than a failure (exit 1)."""


@dataclass
class GateReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    on_undecided: str = "fail"

    @property
    def exit_code(self) -> int:
        if any(not f.insufficient for f in self.findings):
            return FAIL
        if any(f.insufficient for f in self.findings) and self.on_undecided == "fail":
            return INSUFFICIENT
        return PASS


def run_gate(
    run: Path,
    config: GateConfig,
    baseline: Path | None = None,
    allow_changed_suite: bool = False,
) -> GateReport:
    """Check the run directory `run` against `config` and, if given, a baseline run directory
    or results.json."""
    results = _results_of(run)
    report = GateReport(on_undecided=config.on_undecided)
    rows = _gated(results, config)
    if not rows:
        raise UserError("the gate selects no model × task of this run", path=run)
    untrusted = {(j.suite, j.task): j for j in results.judges if not j.trusted}
    for row in rows:
        report.checked.append(f"{row.model} on {row.suite}/{row.task}")
        _check_target(row, config, report, untrusted.get((row.suite, row.task)))
        _check_limits(row, config, report)
    if baseline is not None:
        base = _results_of(baseline)
        _check_hygiene(base, results, rows, allow_changed_suite, report)
        _check_regressions(run, results, baseline, base, rows, config, report)
    return report


def _results_of(path: Path) -> Results:
    if path.is_dir() and not (path / RESULTS_NAME).exists():
        from margin.report import score_and_write

        score_and_write(path)
    if not path.exists():
        raise UserError("no such run directory or results.json", path=path)
    return read_results(path)


def _gated(results: Results, config: GateConfig) -> list[TaskRow]:
    models = {m.model for m in results.models}
    tasks = {f"{t.suite}/{t.task}" for t in results.tasks}
    for name in config.models or []:
        if name not in models:
            raise ConfigError(f"gate names model {name!r}; the run has {', '.join(sorted(models))}")
    for name in [*(config.tasks or []), *config.targets]:
        if name not in tasks:
            raise ConfigError(f"gate names task {name!r}; the run has {', '.join(sorted(tasks))}")
    return [
        t
        for t in results.tasks
        if (config.models is None or t.model in config.models)
        and (config.tasks is None or f"{t.suite}/{t.task}" in config.tasks)
    ]


def _check_target(
    row: TaskRow, config: GateConfig, report: GateReport, judge: JudgeRow | None = None
) -> None:
    """Crosses, falls short or undecided against the target; with an untrusted `judge` on the
    task, insufficient evidence whatever the rate (its verdicts cannot decide)."""
    task = f"{row.suite}/{row.task}"
    target = config.targets.get(task, row.target if row.target is not None else 0.0)
    now = rate_with_interval(row.passes, row.n, row.low, row.high)
    if judge is not None:
        rule = f"judge {judge.judge} ({judge.validator}) not trusted: {judge.status}"
        report.findings.append(
            Finding(row.model, task, "all", "–", now, "–", None, rule, insufficient=True)
        )
        return
    if row.low >= target:
        return
    if row.high < target:
        report.findings.append(
            Finding(
                row.model,
                task,
                "all",
                "–",
                now,
                f"< target {target:g}",
                None,
                "falls short of its target",
            )
        )
        return
    rate = row.rate if row.rate is not None else 0.0
    needed = float(effective_n_to_decide(rate, target)) * row.deff - row.n
    more = (
        f"about {int(np.ceil(max(needed, 1))):,} more attempts would decide it"
        if np.isfinite(needed)
        else "its rate sits on the target"
    )
    report.findings.append(
        Finding(
            row.model,
            task,
            "all",
            "–",
            now,
            f"straddles {target:g}",
            None,
            f"undecided: {more}",
            insufficient=True,
        )
    )


def _check_limits(row: TaskRow, config: GateConfig, report: GateReport) -> None:
    task = f"{row.suite}/{row.task}"
    if config.max_p95_s is not None and not (row.latency_p95 or 0) <= config.max_p95_s:
        report.findings.append(
            Finding(
                row.model,
                task,
                "all",
                "–",
                f"p95 {seconds(row.latency_p95)}",
                f"> {seconds(config.max_p95_s)}",
                None,
                "latency limit",
            )
        )
    if config.max_cost_per_1k is not None:
        cost = row.cost_per_1000
        if cost is None or cost > config.max_cost_per_1k:
            shown = "unknown" if cost is None else f"${cost:,.4f}"
            report.findings.append(
                Finding(
                    row.model,
                    task,
                    "all",
                    "–",
                    f"{shown} / 1,000",
                    f"> ${config.max_cost_per_1k:,.4f}",
                    None,
                    "cost limit",
                )
            )


def _check_hygiene(
    base: Results, now: Results, rows: list[TaskRow], allow: bool, report: GateReport
) -> None:
    """Refuse a baseline whose validators or cases differ for a gated task (the measure
    changed, so a comparison means nothing); a changed prompt is what a gate is for."""

    def prints(results: Results) -> dict[str, dict[str, str]]:
        return {
            f"{suite.name}/{task}": fp
            for suite in results.run.suites
            for task, fp in suite.fingerprints.items()
        }

    before, after = prints(base), prints(now)
    changes = []
    for task in sorted({f"{r.suite}/{r.task}" for r in rows}):
        if task not in before:
            changes.append(f"{task} is not in the baseline")
            continue
        differ = [
            part
            for part in ("cases", "validators")
            if before[task].get(part) != after.get(task, {}).get(part)
        ]
        if differ:
            changes.append(f"{task}: {' and '.join(differ)} changed")
        if before[task].get("prompt") != after.get(task, {}).get("prompt"):
            report.notes.append(
                f"{task}: the prompt changed since the baseline (that is what is gated)"
            )
    if changes and not allow:
        raise UserError(
            "the baseline measured something else: "
            + "; ".join(changes)
            + " (--allow-changed-suite compares anyway)"
        )
    report.notes.extend(f"compared anyway (--allow-changed-suite): {c}" for c in changes)


def _outcomes(folder: Path) -> pd.DataFrame | None:
    """Judged outcomes by attempt key, or None when only a results.json was given."""
    journal = (folder if folder.is_dir() else folder.parent) / "journal.jsonl"
    if not journal.exists():
        return None
    frame = read_attempts(journal).frame
    frame = frame[frame["judged"]]
    columns = ["model", "suite", "task", "case", "variant", "repeat"]
    out = frame[[*columns, "condition", "passed"]].copy()
    for name in [*columns[:-1], "condition"]:
        out[name] = out[name].astype(str)
    return out


def _check_regressions(
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
            "comparison too small: it could not detect a drop of "
            f"2 × min_drop ({percent(2 * config.min_drop)}); more attempts would"
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


def gate_markdown(report: GateReport) -> str:
    """The gate's verdict for `$GITHUB_STEP_SUMMARY`."""
    verdict = {PASS: "passed", FAIL: "failed", INSUFFICIENT: "insufficient evidence"}[
        report.exit_code
    ]
    lines = [f"## margin gate: {verdict}", ""]
    if report.findings:
        lines += [
            "| model | task | condition | baseline | now | difference | p-value | rule |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            p = "" if f.p_value is None else f"{f.p_value:.3g}"
            cells = [f.model, f.task, f.condition, f.baseline, f.now, f.difference, p, f.rule]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [f"- {note}" for note in report.notes]
    lines += ["", f"Checked: {', '.join(report.checked)}."]
    return "\n".join(lines) + "\n"


def gate_junit(report: GateReport) -> str:
    """One test case per gated model × task; its findings are its failures (or skips)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="margin gate")
    suite = ET.SubElement(root, "testsuite", name="margin gate", tests=str(len(report.checked)))
    failures = skipped = 0
    for checked in report.checked:
        model, task = checked.split(" on ", 1)
        case = ET.SubElement(suite, "testcase", classname=task.replace("/", "."), name=checked)
        mine = [f for f in report.findings if f.model == model and f.task == task]
        hard = [f for f in mine if not f.insufficient]
        if hard:
            failures += 1
            text = "; ".join(f"{f.rule}: {f.baseline} → {f.now} {f.difference}" for f in hard)
            ET.SubElement(case, "failure", message=text, type="gate").text = text
        elif mine:
            skipped += 1
            ET.SubElement(case, "skipped", message="; ".join(f.rule for f in mine))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
