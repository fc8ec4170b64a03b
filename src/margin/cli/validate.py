"""`margin validate`: check suite files without running anything."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import suites_argument
from margin.errors import UserError
from margin.suite.load import LOAD_RENDER_SECONDS, check_unique_name, load_suite, suite_files
from margin.suite.templates import RenderBudget


@click.command("validate")
@suites_argument()
def command(suites: tuple[str, ...]) -> None:
    """Check SUITE files (or folders of them): shape, templates, validators, expectations.

    Prints one line per suite; a broken suite prints file:line: field: problem and the command
    exits 2 after checking every file.
    """
    failed = False
    seen: dict[str, Path] = {}
    budget = RenderBudget(LOAD_RENDER_SECONDS)
    for path in suite_files(suites):
        try:
            suite = load_suite(path, budget)
            check_unique_name(suite, path, seen)
        except UserError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            failed = True
            continue
        cases = sum(len(t.cases) for t in suite.tasks)
        checks = sum(
            len(t.validators) + sum(len(c.validators) for c in t.cases) for t in suite.tasks
        )
        click.echo(
            f"ok {path}: suite {suite.suite!r}, {len(suite.tasks)} tasks, {cases} cases, "
            f"{checks} validators, target {suite.target:g}"
        )
    if failed:
        raise click.exceptions.Exit(2)
