"""`margin merge`: join shard run directories into one run."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import option
from margin.execute.shards import merge
from margin.report import render_report


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(path_type=Path))
@option(
    "--out",
    env="MARGIN_OUT",
    required=True,
    type=click.Path(path_type=Path),
    help="The merged run directory.",
)
def command(shards: tuple[Path, ...], out: Path) -> None:
    """Join the run directories of SHARDS (margin run --shard i/n, every i once) into OUT:
    one journal, scored and reported exactly as a single-machine run of the same plan. Refuses
    shards of different runs, a missing or repeated shard, an attempt in two shards and a
    planned attempt in none (exit 2)."""
    count = merge(list(shards), out)
    files = render_report(out)
    click.echo(f"merged {len(shards)} shards, {count} attempts: {out}")
    click.echo(f"report: {files.html} (also summary.md, results.json, junit.xml)")
