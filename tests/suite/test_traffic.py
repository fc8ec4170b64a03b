"""A task's `traffic`: its share or volume of product requests, checked at load, weighing the
per-feature mix and never the run's identity."""

from __future__ import annotations

from pathlib import Path

from margin.config import RunSettings
from margin.journal.rundir import run_identity
from margin.suite.load import load_suite
from tests.conftest import run_cli
from tests.suite.test_guards import SUITE


def write(tmp_path: Path, traffic: str | None) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE + (f"    traffic: {traffic}\n" if traffic is not None else ""))
    return path


def test_traffic_loads_and_leaves_the_run_identity_alone(tmp_path: Path) -> None:
    without = load_suite(write(tmp_path, None))
    assert without.tasks[0].traffic is None
    shared = load_suite(write(tmp_path, "0.6"))
    assert shared.tasks[0].traffic == 0.6
    settings = RunSettings()
    assert run_identity([without], [], settings) == run_identity([shared], [], settings)


def test_zero_or_negative_traffic_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "0")
    result = run_cli("validate", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {path}:14: tasks[0].traffic"), result.stderr
