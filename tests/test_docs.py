"""The README and docs/ hold together: every relative link and anchor resolves, and every option
of every command appears in docs/commands.md (or the command's own page)."""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

import click
import pytest

from margin.cli.main import COMMANDS
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`+[^`]*`+")


def prose(page: Path) -> str:
    """The page without code blocks and code spans, where a `[x](y)` is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to
    hyphens, a repeated anchor numbered `-1`, `-2`, …"""
    found: set[str] = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1).strip()).lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        numbered = slug
        while numbered in found:
            numbered = f"{slug}-{len([a for a in found if a.startswith(slug)])}"
        found.add(numbered)
    return found


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", t)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert not broken_links(page)


def test_the_link_checker_finds_what_is_broken(tmp_path: Path) -> None:
    """The checker itself: links in code are not links, anchors are GitHub's, repeats numbered."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Statistics: what the numbers mean\n## Notes\n## Notes\n```\n# not a heading\n```\n"
        "[a](#statistics-what-the-numbers-mean) [b](#notes-1) [c](#not-a-heading) [d](gone.md)"
        " ![e](page.md#notes) `[f](gone.md)` [g](https://example.com/x)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "#not-a-heading: no heading #not-a-heading in page.md",
        "gone.md: no such file",
    ]


def options(name: str) -> list[str]:
    """Every long or short option string of one command (`--help` aside)."""
    command: click.Command = import_module(COMMANDS[name]).command
    commands = command.commands.values() if isinstance(command, click.Group) else [command]
    return sorted(
        opt
        for each in commands
        for param in each.params
        if isinstance(param, click.Option)
        for opt in [*param.opts, *param.secondary_opts]
    )


def usage_rows() -> dict[str, str]:
    """docs/commands.md's table: each command's name and its usage cell."""
    table = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `margin ([\w-]+)(.*?)` \|", table, re.M)
    return {name: usage for name, usage in rows}


def test_the_commands_page_has_a_row_per_command() -> None:
    assert sorted(usage_rows()) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_commands_usage_lists_exactly_its_options(name: str) -> None:
    """The usage cell of docs/commands.md names every option `margin NAME --help` shows, and
    none it does not."""
    documented = sorted(set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", usage_rows().get(name, ""))))
    assert documented == options(name)
