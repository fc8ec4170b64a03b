"""`margin variants`: every variant of a case, exactly as the model will see it."""

from __future__ import annotations

import click

from margin.cli.options import config_option, option
from margin.config import load_run_settings
from margin.errors import UserError
from margin.plan import noise_seed, render_messages, variants
from margin.suite.load import load_suite


@click.command("variants")
@click.argument("suite_path", metavar="SUITE", envvar="MARGIN_SUITE", type=click.Path())
@option("--task", "task_id", env="MARGIN_TASK", help="Task id (default: the first task).")
@option("--case", "case_id", env="MARGIN_CASE", help="Case id (default: the task's first case).")
@config_option()
def command(
    suite_path: str, task_id: str | None, case_id: str | None, config_paths: tuple[str, ...]
) -> None:
    """Print every variant of one case of SUITE: id, noise seed and the messages as sent.

    Variants are the clean prompt (p0), the paraphrases (p1…) and each noise level
    (p0~KIND@LEVELvVERSION), as `margin run` would plan them with the same run settings.
    """
    suite = load_suite(suite_path)
    settings = load_run_settings(config_paths)
    task = next((t for t in suite.tasks if task_id in (None, t.id)), None)
    if task is None:
        known = ", ".join(t.id for t in suite.tasks)
        raise UserError(f"no task {task_id!r}; tasks: {known}", path=suite_path)
    case = next((c for c in task.cases if case_id in (None, c.id)), None)
    if case is None:
        known = ", ".join(c.id for c in task.cases)
        raise UserError(
            f"task {task.id!r} has no case {case_id!r}; cases: {known}", path=suite_path
        )
    for variant in variants(task, settings):
        seed = noise_seed(settings.seed, suite.suite, task.id, case.id, variant)
        click.secho(f"── {variant.id}  (noise seed {seed})", bold=True)
        for message in render_messages(task, case, variant, seed):
            click.echo(f"[{message.role}]")
            click.echo(message.content)
        click.echo()
