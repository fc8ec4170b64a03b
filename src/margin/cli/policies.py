"""`margin policies`: what a retry or a cascade would deliver, estimated from recorded repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from margin.cli.options import option, run_dir_argument
from margin.decide.policies import estimate_all
from margin.decide.policy_runs import measured
from margin.decide.policy_spec import Policy, parse_policy
from margin.decide.scores import run_targets
from margin.errors import UserError
from margin.journal.rundir import read_run_file
from margin.results.policy_rows import PolicyRow
from margin.stats.frame import read_attempts
from margin.stats.numbers import inside, interval, money, percent, rate_with_interval, seconds


@click.command("policies")
@run_dir_argument()
@option(
    "--policy",
    "texts",
    env="MARGIN_POLICY",
    multiple=True,
    metavar="POLICY",
    help="retry(MODEL, TRIES) or cascade(MODEL, MODEL*TRIES, …), optionally ending"
    " with on=any (the oracle upper bound) (repeatable).",
)
def command(run_dir: Path, texts: tuple[str, ...]) -> None:
    """Estimate delivery policies on RUN_DIR from its recorded repeats, calling no model:
    reliability with a 95% interval (cluster bootstrap over cases), silent-failure rate, expected
    calls and cost per 1,000 task executions. A policy tries again only when a production guard
    fails, and delivers the first answer whose guards pass; spelled with `on=any`
    (`retry(m, 2, on=any)`) it tries again on any failed validator, as if it knew the right
    answer: an upper bound, labelled so and never recommended. Each prompt's own repeats are
    resampled (failures correlate within a prompt); steps on different models are taken as
    independent given the prompt. At temperature 0 a retry mostly returns the same answer, and
    the estimate shows it.
    """
    show_policies(run_dir, texts)


def show_policies(run_dir: Path, texts: tuple[str, ...]) -> None:
    """Print the estimates of the run's configured policies and `texts`, the policies run for
    real beside them, and what limits the estimates."""
    run_file = read_run_file(run_dir)
    if run_file is None:
        raise UserError("not a margin run directory (no run.json)", path=run_dir)
    names = {str(m["name"]) for m in run_file.get("models") or []}
    configured = list((run_file.get("settings") or {}).get("policies") or [])
    policies = [parse_policy(text, names) for text in [*configured, *texts]]
    if not policies:
        raise UserError("no policy: pass --policy 'retry(MODEL, 2)' or set run.policies")
    attempts = read_attempts(run_dir / "journal.jsonl")
    estimates = estimate_all(attempts.frame, policies)
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 180))
    console.print(_estimates_table(estimates))
    _print_notes(console, estimates)
    _print_runs(console, run_dir, run_file, attempts.steps, policies, estimates)
    temperatures = {
        float((m.get("sampling") or {}).get("temperature", 0.0))
        for m in run_file.get("models") or []
    }
    if temperatures == {0.0}:
        console.print(
            "Temperature 0: a retry of the same prompt mostly returns the same answer, so a"
            " retry adds little here; a cascade to another model can still help.",
            markup=False,
        )
    if any(row.thin > 0 for row in estimates):
        console.print(
            "Thin: some prompts have fewer recorded repeats than a step's tries; their estimate"
            " uses the repeats there are. Run more repeats to estimate deeper retries.",
            markup=False,
        )


def _estimates_table(estimates: list[PolicyRow]) -> Table:
    out = Table(
        title="Delivery policies (estimated from recorded repeats; next try on a failed guard)"
    )
    for name in ["policy", "task", "reliability", "95% interval", "silent failures",
                 "cases", "calls / task", "cost / 1,000", "p95", "thin prompts"]:  # fmt: skip
        out.add_column(name)
    for row in estimates:
        out.add_row(
            _name(row.policy, row.upper_bound), f"{row.suite}/{row.task}", percent(row.rate),
            interval(row.low, row.high), _silent_estimate(row), str(row.cases),
            f"{row.calls:.2f}", money(row.cost_per_1000), seconds(row.latency_p95),
            f"{row.thin} of {row.prompts}" if row.thin else "0",
        )  # fmt: skip
    return out


def _name(policy: str, upper_bound: str | None) -> str:
    """A policy's name, with its upper-bound label when it is one."""
    return policy if upper_bound is None else f"{policy} — {upper_bound}"


def _silent_estimate(row: PolicyRow) -> str:
    if row.silent is None or row.silent_low is None or row.silent_high is None:
        return "—"
    return f"{percent(row.silent)} {interval(row.silent_low, row.silent_high)}"


def _print_notes(console: Console, estimates: list[PolicyRow]) -> None:
    """What every policy figure means, and which rows are only upper bounds."""
    console.print(
        "A policy tries again only when a production guard fails (a check that needs no right"
        " answer); it delivers the first answer whose guards pass, else the last try's. Silent"
        " failures: the delivered answer passed every guard and failed a reference check.",
        markup=False,
    )
    bounds = sorted({(row.policy, row.upper_bound) for row in estimates if row.upper_bound})
    for policy, label in bounds:
        console.print(f"{policy}: {label}; never recommended.", markup=False)


def _print_runs(
    console: Console,
    run_dir: Path,
    run_file: dict[str, Any],
    steps: pd.DataFrame | None,
    policies: list[Policy],
    estimates: list[PolicyRow],
) -> None:
    """The policies run for real (`margin run --policy`), beside their estimates."""
    if steps is None:
        return
    runs = measured(steps, policies, run_targets(run_dir, run_file)[0])
    if runs.empty:
        return
    guesses = {(r.policy, r.suite, r.task): r for r in estimates}
    out = Table(title="Delivery policies run for real (margin run --policy)")
    for name in ["policy", "task", "measured", "95% interval", "verdict", "estimate",
                 "inside", "silent failures", "calls / task", "cost / 1,000", "p95",
                 "infra-stopped"]:  # fmt: skip
        out.add_column(name)
    for row in runs.to_dict("records"):
        guess = guesses.get((row["policy"], row["suite"], row["task"]))
        bounds = (None, None) if guess is None else (guess.low, guess.high)
        covered = inside(row["rate"], *bounds)
        out.add_row(
            _name(row["policy"], row["upper_bound"]), f"{row['suite']}/{row['task']}",
            f"{row['passes']}/{row['n']} {percent(row['rate'], row['passes'], row['n'])}",
            interval(row["low"], row["high"]), str(row["verdict"]),
            "—" if guess is None else f"{percent(guess.rate)} {interval(guess.low, guess.high)}",
            covered, _silent_run(row), f"{row['calls']:.2f}", money(row["cost_per_1000"]),
            seconds(row["latency_p95"]), str(row["infra_errors"]),
        )  # fmt: skip
    console.print(out)


def _silent_run(row: dict[Any, Any]) -> str:
    n = row.get("guarded_n")
    if n is None or n != n or row.get("silent") is None:
        return "—"
    return rate_with_interval(int(row["silent"]), int(n), row["silent_low"], row["silent_high"])
