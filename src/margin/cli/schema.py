"""`margin schema`: print the JSON Schema of suites, configs or results.json."""

from __future__ import annotations

import json

import click

from margin.cli.options import option
from margin.config import ConfigFile
from margin.gate import GateConfig
from margin.results.document import SCHEMA_PATH
from margin.suite.load import suite_json_schema


@click.command("schema")
@option(
    "--kind",
    env="MARGIN_SCHEMA_KIND",
    type=click.Choice(["suite", "config", "results", "gate"]),
    default="suite",
    show_default=True,
    help="Which file format to describe.",
)
def command(kind: str) -> None:
    """Print the JSON Schema of a suite, a config, or results.json.

    Point your editor's YAML language server at it to validate suites as you type, e.g. put
    `# yaml-language-server: $schema=margin-suite.schema.json` at the top of a suite.
    """
    if kind == "suite":
        schema = suite_json_schema()
    elif kind == "gate":
        schema = GateConfig.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "margin gate"
    elif kind == "results":
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    else:
        schema = ConfigFile.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "margin config"
    click.echo(json.dumps(schema, indent=2, ensure_ascii=False))
