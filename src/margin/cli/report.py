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
def command(run_dir: Path, out: Path | None, templates: Path | None) -> None:
    """Write RUN_DIR's report: index.html (one self-contained page), summary.md (fits a CI job
    summary), results.json (versioned; `margin schema --kind results`) and junit.xml (one test
    case per model × task: crossed, fell short, or undecided as skipped).
    """
    files = render_report(run_dir, out, templates)
    for path in (files.html, files.markdown, files.results, files.junit):
        click.echo(f"wrote {path}")
