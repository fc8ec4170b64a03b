"""`margin report`: render a run's report from its journal, calling no model."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import option, run_dir_argument
from margin.report import render_report


@click.command("report")
@run_dir_argument()
@option(
    "--out",
    env="MARGIN_REPORT_OUT",
    type=click.Path(path_type=Path),
    help="Write here instead of RUN_DIR.",
)
@option(
    "--templates",
    env="MARGIN_TEMPLATES",
    type=click.Path(path_type=Path),
    help="A folder of templates that replace margin's own by name (index.html.j2, summary.md.j2).",
)
@option(
    "--full",
    env="MARGIN_REPORT_FULL",
    is_flag=True,
    help="Also write every answer side by side into answers-1.html, answers-2.html, … (each "
    "page a few MB at most); index.html shows a capped selection.",
)
@option(
    "--baseline",
    env="MARGIN_REPORT_BASELINE",
    type=click.Path(path_type=Path),
    metavar="BASE",
    help="A baseline run directory: also write changes.html, the attempts that flipped pass → "
    "fail and fail → pass per model since BASE, with both answers side by side.",
)
@option(
    "--rescore",
    env="MARGIN_REPORT_RESCORE",
    is_flag=True,
    help="Score the journal again even when results.json records being scored from the run's "
    "files as they are now (otherwise it is reused).",
)
def command(
    run_dir: Path,
    out: Path | None,
    templates: Path | None,
    full: bool,
    baseline: Path | None,
    rescore: bool,
) -> None:
    """Write RUN_DIR's report: index.html (one self-contained page, with the answers side by
    side), summary.md (fits a CI job summary), results.json (versioned; `margin schema --kind
    results`) and junit.xml (one test case per model × task: crossed, fell short, or undecided
    as skipped); with --full, answers-N.html; with --baseline, changes.html. A results.json
    scored from the run's files as they are now is reused, not scored again (--rescore forces).
    """
    files = render_report(run_dir, out, templates, full=full, baseline=baseline, rescore=rescore)
    written = [files.html, *files.pages]
    if files.changes is not None:
        written.append(files.changes)
    for path in (*written, files.markdown, files.results, files.junit):
        click.echo(f"wrote {path}")
