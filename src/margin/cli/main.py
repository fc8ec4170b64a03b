"""`margin`: which model should this feature ship on?

Wires the commands together. User mistakes (UserError) print one line and exit 2; bugs keep
their traceback. Each command's module is imported only when that command runs, so `margin
--help` lists them all (their short help read from the source) without loading pandas or litellm.
"""

from __future__ import annotations

import ast
import gc
import re
import sys
from importlib import import_module
from importlib.util import find_spec
from typing import Any

import click

from margin.errors import UserError

COMMANDS = {
    "init": "margin.cli.init",
    "validate": "margin.cli.validate",
    "schema": "margin.cli.schema",
    "plan": "margin.cli.plan",
    "run": "margin.cli.run",
    "score": "margin.cli.score",
    "report": "margin.cli.report",
    "gate": "margin.cli.gate",
    "import": "margin.cli.import_",
    "policies": "margin.cli.policies",
    "judge-check": "margin.cli.judge_check",
    "merge": "margin.cli.merge",
    "models": "margin.cli.models",
    "variants": "margin.cli.variants",
    "paraphrase": "margin.cli.paraphrase",
}
"""Each command's name and the module whose `command` it is."""


def command_doc(module: str) -> str:
    """The docstring of `module`'s `command`, read from its source without importing it."""
    spec = find_spec(module)
    assert spec is not None and spec.origin is not None, module
    with open(spec.origin, encoding="utf-8") as file:
        source = file.read()
    # Parse only `def command` up to the next top-level line (a fifth of --help's time went
    # into parsing whole modules); the whole module when that slice does not parse alone.
    start = source.find("\ndef command(") + 1
    end = _TOP_LEVEL.search(source, start + 1) if start else None
    try:
        tree = ast.parse(source[start : end.start() if end else None] if start else source)
    except SyntaxError:
        tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "command":
            return ast.get_docstring(node, clean=False) or ""
    return ""


_TOP_LEVEL = re.compile(r"^\S", re.MULTILINE)


class MarginGroup(click.Group):
    """The commands of COMMANDS, loaded on use; margin's UserError becomes one line on stderr and
    exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        # No collection while the command's modules load (each full one would walk every
        # object loaded so far, for nothing); on again for the command itself.
        gc.disable()
        try:
            command: click.Command = import_module(COMMANDS[cmd_name]).command
        finally:
            gc.enable()
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=command_doc(COMMANDS[name])).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
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


def main() -> None:
    """Console-script entry point. On the way out the heap is frozen: the interpreter's last
    collection would otherwise walk every object litellm and pandas built (0.35 s after a run),
    only to free memory the process is about to give back whole."""
    try:
        cli.main(prog_name="margin")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
