"""`margin paraphrase`: have a model write paraphrases once, into a lock file for review."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from margin.cli.options import models_option, option
from margin.config import ModelSpec, load_models
from margin.errors import ConfigError
from margin.providers.gateway import close_clients, complete
from margin.suite.load import load_suite
from margin.suite.lock import paraphrase_request, parse_paraphrases, problem_with, write_lock
from margin.suite.tasks import Suite, Task


@click.command("paraphrase")
@click.argument("suite_path", metavar="SUITE", envvar="MARGIN_SUITE", type=click.Path())
@models_option()
@option(
    "--with",
    "model_name",
    env="MARGIN_PARAPHRASE_WITH",
    metavar="MODEL",
    help="Name of the model in the set that writes them (default: the last in the set).",
)
@option(
    "--count",
    env="MARGIN_PARAPHRASE_COUNT",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Paraphrases asked for per task.",
)
def command(suite_path: str, models_path: str, model_name: str | None, count: int) -> None:
    """Ask the --with MODEL of the --models set, once, for paraphrases of each task's prompt.

    Each answer line is checked like an authored paraphrase — it must keep every {{ variable }}
    of the prompt and render for every case — and the ones that pass go to SUITE.lock.yaml with
    `approved: false`. Review the file, then set `approved: true` to use them as variants.
    """
    suite = load_suite(suite_path)
    models = load_models(models_path)
    model = next((m for m in reversed(models) if model_name in (None, m.name)), None)
    if model is None:
        raise ConfigError(f"no model {model_name!r} in the set", path=models_path)
    answers = asyncio.run(_ask_all(suite, model, model.resolve_api_key(), count))
    kept = {task.id: _keep(task, answers[task.id]) for task in suite.tasks}
    path = write_lock(suite, Path(suite_path), model.model, kept)
    click.echo(f"wrote {path}: review it, then set approved: true")


async def _ask_all(
    suite: Suite, model: ModelSpec, api_key: str | None, count: int
) -> dict[str, str]:
    """`model`'s answer to the paraphrase request of each task, one call at a time."""
    answers = {}
    try:
        for task in suite.tasks:
            request = [{"role": "user", "content": paraphrase_request(task, count)}]
            done = await complete(model, request, seed=0, max_tokens=1024, api_key=api_key)
            answers[task.id] = done.text
    finally:
        await close_clients()
    return answers


def _keep(task: Task, answer: str) -> list[str]:
    """The paraphrases in `answer` that check like authored ones (each rejection printed)."""
    candidates = parse_paraphrases(answer)
    good = [c for c in candidates if problem_with(task, c) is None and c != task.prompt]
    click.echo(f"{task.id}: kept {len(good)} of {len(candidates)} paraphrases")
    for candidate in candidates:
        problem = problem_with(task, candidate)
        if problem:
            click.echo(f"  rejected ({problem}): {candidate[:80]}")
    return good
