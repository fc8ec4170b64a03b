"""`margin plan`: how many calls a run makes, what it should cost, how long it should take."""

from __future__ import annotations

import math

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from margin.cli.inputs import load_inputs
from margin.cli.options import (
    adaptive_options,
    config_option,
    models_option,
    only_option,
    option,
    suites_argument,
)
from margin.execute.adaptive import expected_share
from margin.plan import Plan, plan_table
from margin.stats.evidence import evidence_table
from margin.stats.numbers import percent


@click.command("plan")
@suites_argument()
@models_option()
@only_option()
@config_option()
@option("--repeats", env="MARGIN_REPEATS", type=click.IntRange(1, 1000), help="Calls per variant.")
@option("--json", "as_json", env="MARGIN_PLAN_JSON", is_flag=True, help="Print JSON rows.")
@adaptive_options("Plan adaptive repeats: expected and worst-case calls beside the fixed plan.")
def command(
    suites: tuple[str, ...],
    models_path: str,
    only: tuple[str, ...],
    config_paths: tuple[str, ...],
    repeats: int | None,
    as_json: bool,
    adaptive: bool | None,
    max_repeats: int | None,
) -> None:
    """Show the attempts a run of SUITE... on the model set would make, by model and task.

    Cost comes from the config's price override or litellm's bundled price map (local models
    are free); output tokens are estimated from the task's length validators, else capped at
    max_tokens. Time assumes each model's concurrency and its tokens_per_second.

    Then the evidence needed: whether a model that passed every planned attempt could even
    cross each task's target, how many cases that takes, and the smallest difference between
    two models the paired test could detect.
    """
    inputs = load_inputs(
        suites,
        models_path,
        only,
        config_paths,
        repeats=repeats,
        adaptive=adaptive,
        max_repeats=max_repeats,
    )
    plan = inputs.plan  # an adaptive run's is planned up to its cap (plan.settings)
    table = plan_table(plan)
    if as_json:
        click.echo(table.to_json(orient="records", indent=2))
        return
    _print_table(table, plan.settings.repeats)
    _print_evidence(plan)
    if plan.settings.adaptive:
        _print_adaptive(table, plan)


def _money(value: float) -> str:
    return "unknown" if math.isnan(value) else f"${value:,.4f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _print_table(table: pd.DataFrame, repeats: int) -> None:
    out = Table(
        title=f"margin plan ({repeats} repeats per variant)",
        caption="Total time runs one model after another; cost is an estimate.",
    )
    for name, justify in [
        ("model", "left"),
        ("suite/task", "left"),
        ("attempts", "right"),
        ("tokens in", "right"),
        ("tokens out (est.)", "right"),
        ("cost (est.)", "right"),
        ("time (est.)", "right"),
    ]:
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for model, rows in table.groupby("model", sort=False):
        for row in rows.itertuples():
            out.add_row(
                str(model),
                f"{row.suite}/{row.task}",
                f"{row.attempts:,}",
                f"{row.input_tokens:,}",
                f"{row.output_tokens:,}",
                _money(float(row.cost_usd)),  # type: ignore[arg-type]
                _duration(float(row.seconds)),  # type: ignore[arg-type]
            )
        out.add_row(
            f"[bold]{model}[/bold]",
            "[bold]all tasks[/bold]",
            f"{rows['attempts'].sum():,}",
            f"{rows['input_tokens'].sum():,}",
            f"{rows['output_tokens'].sum():,}",
            _money(float(rows["cost_usd"].sum(min_count=len(rows)))),
            _duration(float(rows["seconds"].sum())),
            end_section=True,
        )
    out.add_row(
        "[bold]total[/bold]",
        "",
        f"{table['attempts'].sum():,}",
        f"{table['input_tokens'].sum():,}",
        f"{table['output_tokens'].sum():,}",
        _money(float(table["cost_usd"].sum(min_count=len(table)))),
        _duration(float(table["seconds"].sum())),
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))
    console.print(out)


def _print_evidence(plan: Plan) -> None:
    evidence = evidence_table(plan)
    out = Table(
        title="Evidence needed",
        caption=(
            "An all-pass model's lower bound counts cases: repeats of a case that all agree"
            " (as at temperature 0) are copies, not new evidence. Smallest detectable"
            " difference: best case, every discordant attempt one way, Holm over model pairs."
        ),
    )
    for name in ["suite/task", "target", "cases", "conditions × repeats", "attempts per model",
                 "all pass → lower bound", "can cross?", "cases needed",
                 "smallest detectable difference"]:  # fmt: skip
        out.add_column(name, justify="left" if name == "suite/task" else "right")
    for row in evidence.to_dict("records"):
        verdict = "yes" if row["can_cross"] else "[bold red]no[/bold red]"
        independent, copies = row["detectable_independent"], row["detectable_copies"]
        detectable = (
            percent(copies)
            if independent == copies
            else f"{percent(independent)} (independent) – {percent(copies)} (copies)"
        )
        out.add_row(
            f"{row['suite']}/{row['task']}",
            f"{row['target']:g}",
            str(row["cases"]),
            f"{row['conditions']} × {row['repeats']}",
            f"{row['pooled']:,}",
            percent(row["all_pass_low"]),
            verdict,
            str(row["cases_needed"]),
            detectable,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    console.print(out)


def _print_adaptive(table: pd.DataFrame, plan: Plan) -> None:
    settings = plan.settings
    tasks = {(r["suite"], r["task"]): r for r in evidence_table(plan).to_dict("records")}
    expected = 0.0
    for row in table.to_dict("records"):
        task = tasks[(row["suite"], row["task"])]
        share = expected_share(
            int(task["cases"]), settings.max_repeats, float(task["target"]),
            settings.adaptive_alpha, settings.adaptive_delta,
        )  # fmt: skip
        expected += share * int(row["attempts"])
    worst = int(table["attempts"].sum())
    click.echo(
        f"adaptive (cap {settings.max_repeats} repeats): expected ≈ {expected:,.0f} calls"
        f" ({expected / worst:.0%} of the fixed plan) if true rates spread evenly over 0.5–1.0"
        f" and repeats vary; worst case {worst:,} (the fixed plan: at temperature 0 repeats"
        " are copies, so undecided cells run to the cap)"
    )
