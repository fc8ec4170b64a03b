"""Writing the converted files: YAML as a person writes it, under a header that says where it
came from and what did not convert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from margin.integrations.promptfoo.common import Imported


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (prompts, rubrics) as literal blocks, as a person writes them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def header(config: Path, result: Imported) -> list[str]:
    """The comment a converted file starts with: its source, and what did not convert."""
    lines = [f"Imported from {config} by `margin import promptfoo`."]
    if result.lost:
        lines.append(f"Not converted ({len(result.lost)}):")
        lines.extend(f"  - {loss.where}: {loss.what} — {loss.why}" for loss in result.lost)
    if result.changed:
        lines.append(f"Converted with a shifted meaning ({len(result.changed)}):")
        lines.extend(f"  - {c.where}: {c.what} — {c.why}" for c in result.changed)
    return lines


def dump_yaml(data: Mapping[str, Any], lines: Iterable[str]) -> str:
    """YAML with a comment header, keys in the order given."""
    comment = "".join(f"# {line}\n" for line in lines)
    text = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return comment + text
