"""`margin models`: which models are ready to run, their size and price."""

from __future__ import annotations

import os

import click
from rich.console import Console
from rich.table import Table

from margin.cli.options import models_option
from margin.config import ModelSpec, load_models
from margin.providers.local import runtime_available
from margin.providers.local_models import CATALOGUE, part_paths
from margin.providers.prices import price_for


@click.command("models")
@models_option(required=False)
def command(models_path: str | None) -> None:
    """List models: available or not (and how to fix it), parameters, file size, price.

    Without --models, lists the embedded local family.
    """
    if models_path:
        specs = load_models(models_path)
    else:
        specs = [
            ModelSpec(name=m.name, model=f"local/{m.name}", params=m.params)
            for m in CATALOGUE.values()
        ]
    table = Table(title="margin models")
    for column in ("name", "model", "available", "params", "file size", "price $/1M in·out"):
        table.add_column(column)
    for spec in specs:
        available, size = _availability(spec)
        table.add_row(spec.name, spec.model, available, spec.params or "?", size, _price(spec))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    console.print(table)


def _availability(spec: ModelSpec) -> tuple[str, str]:
    if spec.provider == "local":
        name = spec.model.split("/", 1)[1]
        info = CATALOGUE.get(name)
        if info is None:
            return "no: unknown local model", "?"
        size = f"{info.size / 1e6:,.0f} MB"
        if part_paths(info) is None:
            return f"no: run `{info.install_command}`", size
        if not runtime_available():
            return "no: run `pip install 'margin[local]'`", size
        return "yes", size
    if spec.provider == "fake":
        return "yes (scripted fake)", "–"
    if spec.api_key:
        variable = spec.api_key.strip("${}")
        return ("yes" if os.environ.get(variable) else f"no: set {variable}"), "–"
    return ("yes (no key needed)" if spec.api_base else "yes"), "–"


def _price(spec: ModelSpec) -> str:
    price = price_for(spec)
    if not price.known:
        return "unknown"
    return f"{price.input * 1e6:g} · {price.output * 1e6:g} ({price.source})"
