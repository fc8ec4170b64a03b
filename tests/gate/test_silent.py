"""`max_silent`: the gate bounds the rate of wrong answers every production guard let through,
with the same three states as a target (over, within, not yet decidable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.errors import ConfigError
from margin.gate import FAIL, INSUFFICIENT, PASS, GateConfig
from margin.gate.checks import run_gate
from margin.results.document import RESULTS_NAME, read_results
from tests.report.conftest import make_run
from tests.stats.records import outcomes


def run_with(tmp_path: Path, silent: int, detected: int, passes: int, guards: bool = True):  # type: ignore[no-untyped-def]
    """One case per attempt: `silent` wrong answers every guard passed, `detected` caught."""
    records = outcomes("m", "0" * (silent + detected) + "1" * passes)
    shown = [True] * silent + [False] * detected + [True] * passes
    records = [
        r.model_copy(update={"guards_passed": ok if guards else None})
        for r, ok in zip(records, shown, strict=True)
    ]
    return make_run(tmp_path / "run", records, settings={"target": 0.5})


def test_no_silent_failure_in_200_answers_is_within_two_percent(tmp_path: Path) -> None:
    run = run_with(tmp_path, silent=0, detected=20, passes=180)
    report = run_gate(run, GateConfig(max_silent=0.02))
    row = read_results(run / RESULTS_NAME).tasks[0]
    assert (row.silent, row.guarded_n, row.detected) == (0, 200, 20)
    assert row.silent_high is not None and row.silent_high <= 0.02  # 0/200: at most 1.9%
    assert report.exit_code == PASS, report.findings


def test_ten_silent_in_a_hundred_fails_the_limit(tmp_path: Path) -> None:
    report = run_gate(
        run_with(tmp_path, silent=10, detected=0, passes=90), GateConfig(max_silent=0.02)
    )
    [finding] = report.findings
    assert report.exit_code == FAIL and finding.rule == "silent failures above the limit"
    assert finding.now.startswith("silent 10/100 10.0% [") and finding.difference == "> 0.02"


def test_one_silent_in_a_hundred_cannot_yet_tell(tmp_path: Path) -> None:
    report = run_gate(
        run_with(tmp_path, silent=1, detected=0, passes=99), GateConfig(max_silent=0.02)
    )
    [finding] = report.findings
    assert report.exit_code == INSUFFICIENT and finding.insufficient
    assert finding.difference == "straddles 0.02"


def test_a_per_task_limit_overrides_the_runs(tmp_path: Path) -> None:
    run = run_with(tmp_path, silent=10, detected=0, passes=90)
    loose = GateConfig(max_silent=0.01, max_silent_by_task={"s/t": 0.5})
    assert run_gate(run, loose).exit_code == PASS


def test_a_journal_before_guards_is_insufficient_not_passed(tmp_path: Path) -> None:
    run = run_with(tmp_path, silent=0, detected=0, passes=100, guards=False)
    report = run_gate(run, GateConfig(max_silent=0.02))
    [finding] = report.findings
    assert report.exit_code == INSUFFICIENT and "predates guard outcomes" in finding.rule


def test_without_a_limit_silent_failures_do_not_gate(tmp_path: Path) -> None:
    run = run_with(tmp_path, silent=10, detected=0, passes=90)
    assert run_gate(run, GateConfig()).exit_code == PASS


def test_a_limit_for_an_unknown_task_is_refused(tmp_path: Path) -> None:
    run = run_with(tmp_path, silent=0, detected=0, passes=10)
    with pytest.raises(ConfigError, match="gate names task 's/nope'"):
        run_gate(run, GateConfig(max_silent_by_task={"s/nope": 0.1}))
