"""What `margin run` prints when its calls are done: the run scored, its report written, the
decision per feature first. It runs in the forked scorer (`margin.cli.scorer`), so the run's own
process never loads the scoring stack."""

from __future__ import annotations

import time
from pathlib import Path

from margin.decide.scores import score_run
from margin.decide.summary import decision_lines, model_lines, recommendation_lines, task_lines
from margin.report import render_report
from margin.report.render import compile_templates
from margin.results.document import read_results
from margin.suite.tasks import Suite


def prepare() -> None:
    """What can be done before the run ends: its templates compiled."""
    compile_templates()


def summary_lines(folder: Path, suites: list[Suite]) -> tuple[list[str], float, float]:
    """The decision per feature first, then the run's models with their intervals and the
    one-model recommendation (`margin score` has more); the seconds scoring and the report
    took. `suites`, the run's as loaded at its start, spare parsing its copies again."""
    started = time.perf_counter()
    scores = score_run(folder, suites=suites)
    scored = time.perf_counter()
    if scores.models.empty:
        return ["no attempts recorded"], scored - started, 0.0
    files = render_report(folder, scores=scores)  # scored once, above
    reported = time.perf_counter() - scored
    results = read_results(files.results)
    policies = [line for line in results.recommendation.lines if line.startswith("Policy ")]
    lines = [
        *decision_lines(results.features, results.areas, results.mix),
        *model_lines(scores),
        *task_lines(scores),
        *recommendation_lines(scores),
        *policies,
    ]
    for judge in results.judges:
        name = judge.judge or "(none)"
        trust = "trusted" if judge.trusted else "NOT trusted, cannot decide a gate"
        lines.append(
            f"judge {name} on {judge.suite}/{judge.task}: {judge.scored} scored,"
            f" {judge.unscored} unscored; {trust} ({judge.status})"
        )
    lines.append(f"report: {files.html} (also summary.md, results.json, junit.xml)")
    lines.append(f"details: margin score {folder}")
    return lines, scored - started, reported
