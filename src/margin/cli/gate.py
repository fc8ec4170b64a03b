"""`margin gate`: fail a CI job when a model misses its bar or regresses beyond noise."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from margin.cli.options import option, run_dir_argument
from margin.gate import GateReport, gate_junit, gate_markdown, load_gate_config
from margin.gate.checks import run_gate
from margin.gate.output import changes_line
from margin.journal.rundir import make_folder, write_atomically


@click.command("gate")
@run_dir_argument()
@option(
    "--baseline",
    env="MARGIN_BASELINE",
    type=click.Path(path_type=Path),
    help="A baseline run directory (paired comparison) or its results.json.",
)
@option(
    "--config", "config_path", env="MARGIN_GATE", type=click.Path(path_type=Path), help="gate.yaml."
)
@option(
    "--allow-changed-suite",
    env="MARGIN_ALLOW_CHANGED_SUITE",
    is_flag=True,
    help="Compare even when the baseline's cases or validators differ.",
)
@option(
    "--out",
    env="MARGIN_GATE_OUT",
    type=click.Path(path_type=Path),
    help="Where to write gate/summary.md and gate/junit.xml (default RUN_DIR).",
)
@click.pass_context
def command(
    ctx: click.Context,
    run_dir: Path,
    baseline: Path | None,
    config_path: Path | None,
    allow_changed_suite: bool,
    out: Path | None,
) -> None:
    """Gate RUN_DIR. Exit 0: pass. 1: a gated model × task falls short of its target, breaks a
    latency or cost limit, or regresses against the baseline (significant and ≥ min_drop, or a
    hard break). 2: usage error. 3: insufficient evidence (undecided, or a comparison too small
    to detect 2 × min_drop) unless `on_undecided: pass`.
    """
    report = run_gate(run_dir, load_gate_config(config_path), baseline, allow_changed_suite)
    _print(report)
    folder = (out or run_dir if run_dir.is_dir() else run_dir.parent) / "gate"
    changes = None if baseline is None else changes_line(folder, run_dir, baseline)
    _write_files(report, folder, changes)
    code = report.exit_code
    click.echo(f"gate {_verdict(report)}: {len(report.checked)} model × task checked; exit {code}")
    ctx.exit(code)


def _print(report: GateReport) -> None:
    """The findings as a table, then the notes."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    if report.findings:
        table = Table(title="margin gate")
        for name in ["model", "task", "condition", "baseline", "now", "difference", "p-value",
                     "rule"]:  # fmt: skip
            table.add_column(name)
        for f in report.findings:
            table.add_row(
                f.model, f.task, f.condition, f.baseline, f.now, f.difference,
                "" if f.p_value is None else f"{f.p_value:.3g}", f.rule,
            )  # fmt: skip
        console.print(table)
    for note in report.notes:
        console.print(note, markup=False, highlight=False)


def _write_files(report: GateReport, folder: Path, changes: str | None) -> None:
    """gate/summary.md (with a baseline, linking changes.html) and gate/junit.xml."""
    make_folder(folder)
    write_atomically(folder / "summary.md", gate_markdown(report, changes))
    write_atomically(folder / "junit.xml", gate_junit(report))


def _verdict(report: GateReport) -> str:
    verdict = {0: "passed", 1: "failed", 3: "insufficient evidence"}[report.exit_code]
    if report.exit_code == 0 and any(f.insufficient for f in report.findings):
        verdict = "passed (undecided evidence allowed by on_undecided: pass)"
    return verdict
