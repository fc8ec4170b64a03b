"""`margin import promptfoo`: convert checks kept in promptfoo into a margin suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from margin.cli.options import option
from margin.errors import UserError
from margin.integrations.promptfoo import Imported, dump_yaml, header, import_config, slug
from margin.integrations.promptfoo.tasks import PromptsAs
from margin.suite.load import load_suite

PROMPTS_AS = option(
    "--prompts-as",
    env="MARGIN_IMPORT_PROMPTS_AS",
    type=click.Choice(["tasks", "paraphrases"]),
    default="tasks",
    show_default=True,
    help="Each prompt a task with every test as a case, or one task with the other prompts as"
    " its paraphrases (the prompts must share their variables).",
)


@click.group("import")
def command() -> None:
    """Convert checks kept in another tool into margin suites."""


@command.command("promptfoo")
@click.argument("config", type=click.Path(path_type=Path))
@option(
    "--out",
    env="MARGIN_IMPORT_OUT",
    type=click.Path(path_type=Path),
    help="The suite to write (default: suites/NAME.yaml, NAME from the config's folder).",
)
@option(
    "--models-out",
    env="MARGIN_IMPORT_MODELS_OUT",
    type=click.Path(path_type=Path),
    help="The models config to write from `providers` (default: configs/NAME.yaml).",
)
@option(
    "--gate-out",
    env="MARGIN_IMPORT_GATE_OUT",
    type=click.Path(path_type=Path),
    help="The gate file for `latency` and `cost` limits (default: configs/NAME.gate.yaml).",
)
@option(
    "--target",
    env="MARGIN_IMPORT_TARGET",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="The suite's reliability target (promptfoo has no such bar).",
)
@option(
    "--strict",
    env="MARGIN_IMPORT_STRICT",
    is_flag=True,
    help="Exit 2 (writing nothing) when anything cannot be converted.",
)
@PROMPTS_AS
@option("--force", env="MARGIN_IMPORT_FORCE", is_flag=True, help="Overwrite existing files.")
def promptfoo(
    config: Path,
    out: Path | None,
    models_out: Path | None,
    gate_out: Path | None,
    target: float,
    strict: bool,
    prompts_as: PromptsAs,
    force: bool,
) -> None:
    """Convert the promptfoo CONFIG (promptfooconfig.yaml) into a margin suite, a models config
    and gate limits. Prompts become tasks (or paraphrases of one), tests cases, a test's
    assertions its case's validators and defaultTest's the task's (promptfoo's semantics),
    providers models with litellm ids. What does not convert, or converts with a shifted
    meaning, is listed; --strict makes a loss exit 2."""
    result, writes = _convert(config, out, models_out, gate_out, target, prompts_as)
    _print_losses(result)
    if strict and result.lost:
        raise UserError(
            f"{len(result.lost)} item(s) of {config} do not convert (listed above); --strict"
            " writes nothing"
        )
    _write(config, result, writes, force)
    _summarise(result, writes)


Write = tuple[Path, dict[str, Any], str]
"""A file to write: its path, its data and what it is (`suite`, `models config`, …)."""


def _convert(
    config: Path,
    out: Path | None,
    models_out: Path | None,
    gate_out: Path | None,
    target: float,
    prompts_as: PromptsAs = "tasks",
) -> tuple[Imported, list[Write]]:
    """The converted config, and the files to write: the suite, then the models config and
    the gate file if there is anything to put in them (NAME from the config's folder)."""
    if not config.is_file():
        raise UserError("no such promptfoo config", path=config)
    stem = (
        config.resolve().parent.name if config.stem.startswith("promptfooconfig") else config.stem
    )
    name = slug(stem, "imported")
    out = out or Path("suites") / f"{name}.yaml"
    models_out = models_out or Path("configs") / f"{name}.yaml"
    gate_out = gate_out or Path("configs") / f"{name}.gate.yaml"
    suite_name = out.stem if slug(out.stem, "") == out.stem else name
    result = import_config(config, suite_name, target, prompts_as)
    writes = [(out, result.suite, "suite")]
    if result.models is not None:
        writes.append((models_out, result.models, "models config"))
    if result.gate is not None:
        writes.append((gate_out, result.gate, "gate file"))
    return result, writes


def _print_losses(result: Imported) -> None:
    """The tables of what did not convert and what converted with a shifted meaning."""
    console = Console(stderr=False, width=max(Console().width, 120))
    if result.lost:
        table = Table(title=f"Not converted ({len(result.lost)})", title_justify="left")
        for column in ("where", "what", "why"):
            table.add_column(column, overflow="fold")
        for loss in result.lost:
            table.add_row(loss.where, loss.what, loss.why)
        console.print(table)
    if result.changed:
        table = Table(
            title=f"Converted, meaning shifted ({len(result.changed)})", title_justify="left"
        )
        for column in ("where", "what", "how"):
            table.add_column(column, overflow="fold")
        for change in result.changed:
            table.add_row(change.where, change.what, change.why)
        console.print(table)


def _write(config: Path, result: Imported, writes: list[Write], force: bool) -> None:
    """Write the converted files (the suite first, checked like any other suite), or nothing."""
    out = writes[0][0]
    existing = [str(path) for path, _, _ in writes if path.exists()]
    if existing and not force:
        raise UserError(f"{', '.join(existing)} exist(s); --force overwrites")
    lines = header(config, result)
    out.parent.mkdir(parents=True, exist_ok=True)
    trial = out.with_name(f".{out.name}.importing")
    trial.write_text(dump_yaml(result.suite, lines), encoding="utf-8")
    try:
        load_suite(trial)  # checked like any other suite before anything is written
    except UserError as exc:
        raise UserError(f"the converted suite does not validate: {exc.message}") from None
    finally:
        trial.unlink(missing_ok=True)
    for path, data, _ in writes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(data, lines), encoding="utf-8")


def _summarise(result: Imported, writes: list[Write]) -> None:
    """What was converted, and where each file went."""
    tasks = result.suite["tasks"]
    own = sum(1 for task in tasks for case in task["cases"] if case.get("validators"))
    paraphrases = sum(len(task.get("paraphrases", ())) for task in tasks)
    click.echo(
        f"{result.tests} promptfoo test(s) → {len(tasks)} task(s)"
        + (f" with {paraphrases} paraphrase(s)" if paraphrases else "")
        + f", {result.cases} case(s) ({own} with validators of their own): {writes[0][0]}"
    )
    for path, _, what in writes[1:]:
        click.echo(f"{what}: {path}")
    if result.models is None:
        click.echo("no provider converts: write a models config (see configs/) to run the suite")
