"""`margin --help` lists every command without importing it, with the help click would show."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import click
import pytest
from click.testing import CliRunner

from margin.cli.main import COMMANDS, cli, command_doc
from tests.conftest import ROOT


def test_every_command_module_is_wired() -> None:
    modules = {
        f"margin.cli.{p.stem}"
        for p in (ROOT / "src" / "margin" / "cli").glob("*.py")
        if p.stem not in {"__init__", "main", "inputs", "options", "scorer", "run_summary"}
    }
    assert set(COMMANDS.values()) == modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_short_help_read_from_source_is_the_commands_own(name: str) -> None:
    command: click.Command = import_module(COMMANDS[name]).command
    assert command.name == name
    assert command.help == click.Command(name, help=command_doc(COMMANDS[name])).help
    for limit in (30, 45, 74):
        from_source = click.Command(name, help=command_doc(COMMANDS[name]))
        assert from_source.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_help_loads_no_command_module() -> None:
    code = (
        "import sys\n"
        "from margin.cli.main import main\n"
        "sys.argv = ['margin', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in sys.modules if m.startswith('margin.cli.') and m != 'margin.cli.main']\n"
        "heavy = [m for m in ('pandas', 'litellm', 'pydantic') if m in sys.modules]\n"
        "print('LOADED', loaded, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED [] []" in out.stdout
    for name in COMMANDS:
        assert f"  {name} " in out.stdout


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output
