"""`margin paraphrase`: have a model write paraphrases once, into a lock file for review."""

from __future__ import annotations

import click

from margin.cli.options import models_option, option


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
    import asyncio
    from pathlib import Path

    from margin.config import load_models
    from margin.errors import ConfigError
    from margin.providers.gateway import close_clients, complete
    from margin.suite.load import load_suite
    from margin.suite.lock import paraphrase_request, parse_paraphrases, problem_with, write_lock

    suite = load_suite(suite_path)
    models = load_models(models_path)
    model = next((m for m in reversed(models) if model_name in (None, m.name)), None)
    if model is None:
        raise ConfigError(f"no model {model_name!r} in the set", path=models_path)
    api_key = model.resolve_api_key()

    async def ask_all() -> dict[str, str]:
        answers = {}
        try:
            for task in suite.tasks:
                request = [{"role": "user", "content": paraphrase_request(task, count)}]
                done = await complete(model, request, seed=0, max_tokens=1024, api_key=api_key)
                answers[task.id] = done.text
        finally:
            await close_clients()
        return answers

    answers = asyncio.run(ask_all())
    kept: dict[str, list[str]] = {}
    for task in suite.tasks:
        candidates = parse_paraphrases(answers[task.id])
        good = [c for c in candidates if problem_with(task, c) is None and c != task.prompt]
        kept[task.id] = good
        click.echo(f"{task.id}: kept {len(good)} of {len(candidates)} paraphrases")
        for candidate in candidates:
            problem = problem_with(task, candidate)
            if problem:
                click.echo(f"  rejected ({problem}): {candidate[:80]}")
    path = write_lock(suite, Path(suite_path), model.model, kept)
    click.echo(f"wrote {path}: review it, then set approved: true")
