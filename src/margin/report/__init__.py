"""The report: index.html, summary.md and junit.xml rendered from a run's results.json.

`render_report` scores a run (`margin.results.score`, which writes results.json) only when its
results.json is missing or no longer matches the run's files, then renders the page, the
summary and JUnit from that document (`margin.report.render`). Rendering needs neither pandas
nor scipy's distributions, so `margin report` on a scored run loads none of the scoring stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from margin.report.changes import baseline_journal
from margin.report.render import ReportFiles, write_report
from margin.results.source import current_results

if TYPE_CHECKING:
    from margin.decide.scores import Scores

__all__ = ["ReportFiles", "render_report", "write_report"]


def render_report(
    folder: Path,
    out: Path | None = None,
    templates: Path | None = None,
    scores: Scores | None = None,
    full: bool = False,
    baseline: Path | None = None,
    rescore: bool = False,
) -> ReportFiles:
    """The score stage writes results.json (into `out`, default the run; `scores` spares it
    scoring again), then the page, the summary and JUnit are rendered from that document;
    with `full`, every answer side by side in answers-N.html; with `baseline` (a run
    directory), what flipped since it in changes.html. A results.json already in `out` that
    records being scored from the run's files as they are now is used as it is, unless
    `rescore`."""
    target = out or folder
    if baseline is not None:
        baseline_journal(baseline)  # a wrong baseline is refused before anything is written
    results = None if rescore or scores is not None else current_results(folder, target)
    if results is None:  # scored first: a damaged journal leaves no folder
        # lazy: the scoring stack (pandas, scipy) loads only when there is something to score
        from margin.results.score import score_run

        results = score_run(folder, target, scores)
    return write_report(results, folder, target, templates, full, baseline)
