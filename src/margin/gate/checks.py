"""The gate's checks of one run: each gated model × task against its target, its latency and
cost limits and, with a baseline, the baseline's fingerprints (then `baseline.py` compares)."""

from __future__ import annotations

from pathlib import Path

from margin.errors import ConfigError, UserError
from margin.gate.baseline import check_regressions
from margin.gate.config import Finding, GateConfig, GateReport
from margin.gate.silent import check_silent
from margin.results.document import RESULTS_NAME, Results, read_results
from margin.results.rows import JudgeRow, TaskRow
from margin.results.score import score_run
from margin.stats.numbers import more_cases_text, rate_with_interval, seconds


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
        check_silent(row, config, report)
    if baseline is not None:
        base = _results_of(baseline)
        _check_hygiene(base, results, rows, allow_changed_suite, report)
        check_regressions(run, results, baseline, base, rows, config, report)
    return report


def _results_of(path: Path) -> Results:
    """The results of a run directory or a results.json; a run without one is scored first
    (the score stage writes it into the run)."""
    if path.is_dir() and not (path / RESULTS_NAME).exists():
        return score_run(path)
    if not path.exists():
        raise UserError("no such run directory or results.json", path=path)
    return read_results(path)


def _gated(results: Results, config: GateConfig) -> list[TaskRow]:
    models = {m.model for m in results.models}
    tasks = {f"{t.suite}/{t.task}" for t in results.tasks}
    for name in config.models or []:
        if name not in models:
            raise ConfigError(f"gate names model {name!r}; the run has {', '.join(sorted(models))}")
    for name in [*(config.tasks or []), *config.targets, *config.max_silent_by_task]:
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
    # the results count new cases against the task's own target; against another (the gate
    # config's) their count does not apply, and the gate computes no statistics of its own
    more = (
        more_cases_text(row.more_cases)
        if row.target == target
        else f"the results count new cases to settle against the task's target, not {target:g}"
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
