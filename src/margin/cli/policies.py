"""`margin policies`: what a retry or a cascade would deliver, estimated from recorded repeats."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import option, run_dir_argument


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
    from rich.console import Console
    from rich.table import Table

    from margin.errors import UserError
    from margin.numbers import interval, money, percent, seconds
    from margin.policies import estimate_all, parse_policy
    from margin.rundir import read_run_file
    from margin.stats.frame import read_attempts

    run_file = read_run_file(run_dir)
    if run_file is None:
        raise UserError("not a margin run directory (no run.json)", path=run_dir)
    names = {str(m["name"]) for m in run_file.get("models") or []}
    configured = list((run_file.get("settings") or {}).get("policies") or [])
    policies = [parse_policy(text, names) for text in [*configured, *texts]]
    if not policies:
        raise UserError("no policy: pass --policy 'retry(MODEL, 2)' or set run.policies")
    table = estimate_all(read_attempts(run_dir / "journal.jsonl").frame, policies)
    out = Table(title="Delivery policies (estimated from recorded repeats)")
    for name in ["policy", "task", "reliability", "95% interval", "cases", "calls / task",
                 "cost / 1,000", "p95", "thin prompts"]:  # fmt: skip
        out.add_column(name)
    for row in table.to_dict("records"):
        out.add_row(
            row["policy"], f"{row['suite']}/{row['task']}", percent(row["rate"]),
            interval(row["low"], row["high"]), str(row["cases"]), f"{row['calls']:.2f}",
            money(row["cost_per_1000"]),
            seconds(row["latency_p95"]),
            f"{row['thin']} of {row['prompts']}" if row["thin"] else "0",
        )  # fmt: skip
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    console.print(out)
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
    if (table["thin"] > 0).any():
        console.print(
            "Thin: some prompts have fewer recorded repeats than a step's tries; their estimate"
            " uses the repeats there are. Run more repeats to estimate deeper retries.",
            markup=False,
        )
