"""`margin`: which model should this feature ship on?

Wires the commands together. User mistakes (UserError) print one line and exit 2; bugs keep
their traceback. Heavy libraries are imported inside commands so `margin --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from margin.cli import (
    gate,
    import_,
    judge_check,
    merge,
    models,
    paraphrase,
    plan,
    policies,
    report,
    run,
    schema,
    score,
    validate,
    variants,
)


class MarginGroup(click.Group):
    """A click group that turns margin's UserError into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        from margin.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            ctx.exit(2)


@click.group(cls=MarginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="margin", prog_name="margin")
def cli() -> None:
    """margin: which model should this feature ship on?

    Run business-task suites against models of several sizes, repeatedly, under paraphrases
    and noise, and find the cheapest, fastest model that reliably clears the task's bar.
    """


cli.add_command(validate.command)
cli.add_command(schema.command)
cli.add_command(plan.command)
cli.add_command(run.command)
cli.add_command(score.command)
cli.add_command(report.command)
cli.add_command(gate.command)
cli.add_command(import_.command)
cli.add_command(policies.command)
cli.add_command(judge_check.command)
cli.add_command(merge.command)
cli.add_command(models.command)
cli.add_command(variants.command)
cli.add_command(paraphrase.command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="margin")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
