"""`margin run`: execute the plan through litellm and write the journal."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import click

from margin.cli.inputs import Inputs, load_inputs
from margin.cli.options import (
    F,
    adaptive_options,
    config_option,
    models_option,
    only_option,
    option,
    suites_argument,
)
from margin.cli.scorer import Scorer, Summary
from margin.decide.policy_spec import parse_policy
from margin.execute.delivery import RunStats
from margin.execute.executors.pool import could_pool
from margin.execute.executors.ray import ray_module
from margin.execute.executors.starter import Starter
from margin.execute.progress import progress_for_terminal
from margin.execute.session import NO_CACHE, RunResult, run
from margin.execute.shards import parse_shard
from margin.execute.timing import write_timing


def _options(decorators: list[Callable[[F], F]]) -> Callable[[F], F]:
    """`decorators` applied as if written one above the other, the first on top."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


_LIMITS = [
    option(
        "--repeats", env="MARGIN_REPEATS", type=click.IntRange(1, 1000), help="Calls per variant."
    ),
    option("--out", env="MARGIN_OUT", type=click.Path(path_type=Path), help="Run directory."),
    option(
        "--no-cache", env="MARGIN_NO_CACHE", is_flag=True, help="Neither read nor write the cache."
    ),
    option(
        "--refresh", env="MARGIN_REFRESH", is_flag=True, help="Call again; overwrite the cache."
    ),
    option(
        "--max-cost",
        env="MARGIN_MAX_COST",
        type=click.FloatRange(min=0, min_open=True),
        metavar="USD",
        help="Stop scheduling before the estimated spend passes this.",
    ),
    option(
        "--concurrency",
        env="MARGIN_CONCURRENCY",
        type=click.IntRange(1, 4096),
        help="Global cap on calls in flight.",
    ),
    option("--seed", env="MARGIN_SEED", type=int, help="Base seed for every attempt's seed."),
    option(
        "--workers",
        env="MARGIN_WORKERS",
        type=click.IntRange(1, 64),
        help="Processes making calls (default: auto).",
    ),
]
"""--repeats … --workers: how much to run, where to write, what to spend."""

_EXTRAS = [
    option(
        "--executor",
        env="MARGIN_EXECUTOR",
        type=click.Choice(["local", "ray"]),
        help="Run on this machine (local) or over a Ray cluster (ray; margin[ray]).",
    ),
    option("--ray-address", env="MARGIN_RAY_ADDRESS", metavar="ADDR", help="Ray cluster to join."),
    option(
        "--shard",
        "shard_text",
        env="MARGIN_SHARD",
        metavar="I/N",
        help="Run only shard I of N (a stable hash of each attempt's key) into its own run"
        " directory; join the N shards with margin merge.",
    ),
    option(
        "--policy",
        "policy_texts",
        env="MARGIN_POLICY",
        multiple=True,
        metavar="POLICY",
        help="After the bare attempts, run this delivery policy for real: retry(MODEL, TRIES) or"
        " cascade(MODEL, MODEL*TRIES, …) (repeatable; adds to run.policies).",
    ),
    option(
        "--retry-errors",
        env="MARGIN_RETRY_ERRORS",
        is_flag=True,
        help="Attempt again every attempt whose latest record is an infra error.",
    ),
]
"""--executor … --retry-errors: where the attempts run, which of them, and what else."""


@click.command("run")
@suites_argument()
@models_option()
@only_option()
@config_option()
@_options(_LIMITS)
@adaptive_options(
    "Run in rounds; give more repeats only to undecided cells (up to run.max_repeats)."
)
@_options(_EXTRAS)
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
    # The pool's starter imports litellm in its own process while this one loads the inputs.
    with Starter() if executor != "ray" and workers != 1 else nullcontext() as starter:
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
        _keep_or_stop(starter, inputs)
        with Scorer(inputs.suites) as scorer:  # forked before litellm loads (cli.scorer)
            result = _run(inputs, out, no_cache, refresh, retry_errors, policy_texts, shard_text)
            summary = scorer.finish(result.folder)
    _print_end(result, summary, inputs.settings.max_cost)


def _keep_or_stop(starter: Starter | None, inputs: Inputs) -> None:
    """Name the run's models to its starter (margin.execute.executors.starter), which warms
    them up; or stop it at once when the run cannot use the pool."""
    if starter is None:
        return
    if could_pool(inputs.plan.attempts, inputs.settings):
        starter.warm(inputs.models)
    else:
        starter.stop()


def _print_end(result: RunResult, summary: Summary, max_cost: float | None) -> None:
    """The scorer's lines, where the time went, the run directory, then why any attempts were
    left unrun (`_report_stops`)."""
    for line in summary.lines:
        click.echo(line)
    _print_timing(result, summary.score_s, summary.report_s)
    click.echo(f"run directory: {result.folder}")
    _report_stops(result.stats, max_cost)


def _run(
    inputs: Inputs,
    out: Path | None,
    no_cache: bool,
    refresh: bool,
    retry_errors: bool,
    policy_texts: tuple[str, ...],
    shard_text: str | None,
) -> RunResult:
    """Run the loaded inputs (on their plan, built once), with the command line's policies."""
    settings = inputs.settings
    if settings.executor == "ray":
        ray_module(local=settings.ray_address is None)  # without Ray: one line, before any call
    shard = parse_shard(shard_text) if shard_text is not None else None
    if policy_texts:
        names = {m.name for m in inputs.models}
        texts = [parse_policy(t, names).name for t in [*settings.policies, *policy_texts]]
        settings = settings.model_copy(
            update={"policies": list(dict.fromkeys(texts)), "run_policies": True}
        )
    return run(
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
        plan=inputs.plan,
    )


def _print_timing(result: RunResult, score_s: float, report_s: float) -> None:
    """Where this invocation's time went (with scoring's and the report's), also written to the
    run directory's timing.json."""
    if result.timing is None:
        return
    result.timing.score_s, result.timing.report_s = score_s, report_s
    write_timing(result.folder, result.timing)
    for line in result.timing.lines():
        click.echo(line)


def _report_stops(stats: RunStats, max_cost: float | None) -> None:
    """Say why attempts were left unrun (a halted model, the budget cap `max_cost`, failed
    workers); exit 1 unless it was the budget."""
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
            f" (cap ${max_cost:.4f} for the run directory, earlier invocations"
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
