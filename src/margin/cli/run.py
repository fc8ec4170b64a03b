"""`margin run`: execute the plan through litellm and write the journal."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import (
    adaptive_options,
    config_option,
    models_option,
    only_option,
    option,
    suites_argument,
)


@click.command("run")
@suites_argument()
@models_option()
@only_option()
@config_option()
@option("--repeats", env="MARGIN_REPEATS", type=click.IntRange(1, 1000), help="Calls per variant.")
@option("--out", env="MARGIN_OUT", type=click.Path(path_type=Path), help="Run directory.")
@option("--no-cache", env="MARGIN_NO_CACHE", is_flag=True, help="Neither read nor write the cache.")
@option("--refresh", env="MARGIN_REFRESH", is_flag=True, help="Call again; overwrite the cache.")
@option(
    "--max-cost",
    env="MARGIN_MAX_COST",
    type=click.FloatRange(min=0, min_open=True),
    metavar="USD",
    help="Stop scheduling before the estimated spend passes this.",
)
@option(
    "--concurrency",
    env="MARGIN_CONCURRENCY",
    type=click.IntRange(1, 4096),
    help="Global cap on calls in flight.",
)
@option("--seed", env="MARGIN_SEED", type=int, help="Base seed for every attempt's seed.")
@option(
    "--workers",
    env="MARGIN_WORKERS",
    type=click.IntRange(1, 64),
    help="Processes making calls (default: auto).",
)
@adaptive_options(
    "Run in rounds; give more repeats only to undecided cells (up to run.max_repeats)."
)
@option(
    "--executor",
    env="MARGIN_EXECUTOR",
    type=click.Choice(["local", "ray"]),
    help="Run on this machine (local) or over a Ray cluster (ray; margin[ray]).",
)
@option("--ray-address", env="MARGIN_RAY_ADDRESS", metavar="ADDR", help="Ray cluster to join.")
@option(
    "--shard",
    "shard_text",
    env="MARGIN_SHARD",
    metavar="I/N",
    help="Run only shard I of N (a stable hash of each attempt's key) into its own run"
    " directory; join the N shards with margin merge.",
)
@option(
    "--policy",
    "policy_texts",
    env="MARGIN_POLICY",
    multiple=True,
    metavar="POLICY",
    help="After the bare attempts, run this delivery policy for real: retry(MODEL, TRIES) or"
    " cascade(MODEL, MODEL*TRIES, …) (repeatable; adds to run.policies).",
)
@option(
    "--retry-errors",
    env="MARGIN_RETRY_ERRORS",
    is_flag=True,
    help="Attempt again every attempt whose latest record is an infra error.",
)
def command(
    suites: tuple[str, ...],
    models_path: str,
    only: tuple[str, ...],
    config_paths: tuple[str, ...],
    repeats: int | None,
    out: Path | None,
    no_cache: bool,
    refresh: bool,
    max_cost: float | None,
    concurrency: int | None,
    seed: int | None,
    workers: int | None,
    retry_errors: bool,
    policy_texts: tuple[str, ...],
    shard_text: str | None,
    executor: str | None,
    ray_address: str | None,
    adaptive: bool | None,
    max_repeats: int | None,
) -> None:
    """Run SUITE... on the model set; write DIR/journal.jsonl as attempts finish.

    DIR defaults to reports/run-<id>, where the id is derived from the suites, models, seed and
    variants: running the same command again resumes the run (nothing finished is repeated);
    raising --repeats extends it. Provider faults are retried, then recorded as infra errors,
    never as model failures. Answers are cached on disk (MARGIN_CACHE_DIR).
    """
    from margin.cli.inputs import load_inputs
    from margin.run.progress import progress_for_terminal
    from margin.run.session import NO_CACHE, run

    inputs = load_inputs(
        suites,
        models_path,
        only,
        config_paths,
        repeats=repeats,
        concurrency=concurrency,
        seed=seed,
        max_cost=max_cost,
        workers=workers,
        adaptive=adaptive,
        max_repeats=max_repeats,
        executor=executor,
        ray_address=ray_address,
    )
    settings = inputs.settings
    if settings.executor == "ray":
        from margin.run.executors.ray import ray_module

        ray_module(local=settings.ray_address is None)  # without Ray: one line, before any call
    shard = None
    if shard_text is not None:
        from margin.run.shards import parse_shard

        shard = parse_shard(shard_text)
    if policy_texts:
        from margin.decide.policies import parse_policy

        names = {m.name for m in inputs.models}
        texts = [parse_policy(t, names).name for t in [*settings.policies, *policy_texts]]
        settings = settings.model_copy(
            update={"policies": list(dict.fromkeys(texts)), "run_policies": True}
        )
    result = run(
        inputs.suites,
        inputs.models,
        settings,
        out=out,
        cache_dir=NO_CACHE if no_cache else None,
        read_cache=not refresh,
        retry_errors=retry_errors,
        progress=progress_for_terminal(),
        judges=inputs.judges,
        shard=shard,
    )
    stats = result.stats
    _print_summary(result.folder)
    click.echo(f"run directory: {result.folder}")
    for model, reason in sorted(stats.halted.items()):
        click.echo(
            f"error: model {model} stopped after its first calls were all refused ({reason});"
            f" {stats.not_run} attempts not run. Fix it, then run again with --retry-errors",
            err=True,
        )
    if stats.halted:
        raise click.exceptions.Exit(1)
    if stats.budget_stopped:
        click.echo(
            f"budget: stopped scheduling at ${stats.spent_usd:.4f} spent by this invocation"
            f" (cap ${settings.max_cost:.4f} for the run directory, earlier invocations"
            f" included); {stats.not_run} attempts not run. Run the same command with a higher"
            " --max-cost to finish them.",
            err=True,
        )
    elif stats.not_run:
        why = (
            f"{stats.failed_workers} worker process(es) stopped early"
            if stats.failed_workers
            else "see the errors above"
        )
        click.echo(
            f"error: {stats.not_run} attempts were not run ({why}); run the same command again"
            " to finish them",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _print_summary(folder: Path) -> None:
    """The run's models with their intervals, then the recommendation (`margin score` has more)."""
    from margin.decide.summary import model_lines, recommendation_lines, task_lines
    from margin.stats import score_run

    scores = score_run(folder)
    if scores.models.empty:
        click.echo("no attempts recorded")
        return
    for line in [*model_lines(scores), *task_lines(scores), *recommendation_lines(scores)]:
        click.echo(line)
    from margin.report import render_report

    files = render_report(folder, scores=scores)  # scored once, above
    from margin.results.document import read_results

    results = read_results(files.results)
    for line in results.recommendation.lines:
        if line.startswith("Policy "):
            click.echo(line)
    for judge in results.judges:
        name = judge.judge or "(none)"
        trust = "trusted" if judge.trusted else "NOT trusted, cannot decide a gate"
        click.echo(
            f"judge {name} on {judge.suite}/{judge.task}: {judge.scored} scored,"
            f" {judge.unscored} unscored; {trust} ({judge.status})"
        )
    click.echo(f"report: {files.html} (also summary.md, results.json, junit.xml)")
    click.echo(f"details: margin score {folder}")
