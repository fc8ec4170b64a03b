"""`margin schema`: print the JSON Schema of suites (or configs) for editors."""

from __future__ import annotations

import json

import click

from margin.cli.options import option


@click.command("schema")
@option(
    "--kind",
    env="MARGIN_SCHEMA_KIND",
    type=click.Choice(["suite", "config"]),
    default="suite",
    show_default=True,
    help="Which file format to describe.",
)
def command(kind: str) -> None:
    """Print the JSON Schema of a suite (or config) file.

    Point your editor's YAML language server at it to validate suites as you type, e.g. put
    `# yaml-language-server: $schema=margin-suite.schema.json` at the top of a suite.
    """
    if kind == "suite":
        from margin.suite import suite_json_schema

        schema = suite_json_schema()
    else:
        from margin.config import ConfigFile

        schema = ConfigFile.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "margin config"
    click.echo(json.dumps(schema, indent=2, ensure_ascii=False))
