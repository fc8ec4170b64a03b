"""`margin policies`: what a retry or a cascade would deliver, estimated from recorded repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from margin.cli.options import option, run_dir_argument
from margin.decide.policies import Policy, estimate_all, measured, parse_policy
from margin.decide.scores import run_targets
from margin.errors import UserError
from margin.journal.rundir import read_run_file
from margin.results.rows import PolicyRow
from margin.stats.frame import read_attempts
from margin.stats.numbers import inside, interval, money, percent, seconds


@click.command("policies")
@run_dir_argument()
@option(
    "--policy",
    "texts",
    env="MARGIN_POLICY",
    multiple=True,
    metavar="POLICY",
    help="retry(MODEL, TRIES) or cascade(MODEL, MODEL*TRIES, …) (repeatable).",
)
def command(run_dir: Path, texts: tuple[str, ...]) -> None:
    """Estimate delivery policies on RUN_DIR from its recorded repeats, calling no model:
    reliability with a 95% interval (cluster bootstrap over cases), expected calls and cost
    per 1,000 task executions. Each prompt's own repeats are resampled (failures correlate
    within a prompt); steps on different models are taken as independent given the prompt. At
    temperature 0 a retry mostly returns the same answer, and the estimate shows it.
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
    out = Table(title="Delivery policies (estimated from recorded repeats)")
    for name in ["policy", "task", "reliability", "95% interval", "cases", "calls / task",
                 "cost / 1,000", "p95", "thin prompts"]:  # fmt: skip
        out.add_column(name)
    for row in estimates:
        out.add_row(
            row.policy, f"{row.suite}/{row.task}", percent(row.rate),
            interval(row.low, row.high), str(row.cases), f"{row.calls:.2f}",
            money(row.cost_per_1000),
            seconds(row.latency_p95),
            f"{row.thin} of {row.prompts}" if row.thin else "0",
        )  # fmt: skip
    return out


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
                 "inside", "calls / task", "cost / 1,000", "p95", "infra-stopped"]:  # fmt: skip
        out.add_column(name)
    for row in runs.to_dict("records"):
        guess = guesses.get((row["policy"], row["suite"], row["task"]))
        bounds = (None, None) if guess is None else (guess.low, guess.high)
        covered = inside(row["rate"], *bounds)
        out.add_row(
            row["policy"], f"{row['suite']}/{row['task']}",
            f"{row['passes']}/{row['n']} {percent(row['rate'], row['passes'], row['n'])}",
            interval(row["low"], row["high"]), str(row["verdict"]),
            "—" if guess is None else f"{percent(guess.rate)} {interval(guess.low, guess.high)}",
            covered, f"{row['calls']:.2f}", money(row["cost_per_1000"]),
            seconds(row["latency_p95"]), str(row["infra_errors"]),
        )  # fmt: skip
    console.print(out)
