"""The gate as a library (margin.gate): a run without results.json is scored by the score
stage, never rendered by the report."""

from __future__ import annotations

from pathlib import Path

from margin.gate import FAIL, PASS, GateConfig, gate_junit, gate_markdown, load_gate_config
from margin.gate.checks import run_gate
from margin.results.document import RESULTS_NAME, read_results
from tests.report.conftest import make_run
from tests.stats.records import outcomes


def test_a_run_without_results_is_scored_not_reported(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1" * 40), settings={"target": 0.8})
    report = run_gate(run, GateConfig())
    assert report.exit_code == PASS and report.checked == ["m on s/t"]
    assert read_results(run / RESULTS_NAME).tasks[0].passes == 40
    assert not (run / "index.html").exists() and not (run / "junit.xml").exists()


def test_a_short_run_fails_and_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "0" * 40), settings={"target": 0.8})
    report = run_gate(run, load_gate_config(None))
    assert report.exit_code == FAIL
    assert [f.rule for f in report.findings] == ["falls short of its target"]
    assert gate_markdown(report).startswith("## margin gate: failed")
    assert 'failures="1"' in gate_junit(report)


def test_an_undecided_cell_states_the_results_count_of_new_cases(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1" * 10), settings={"target": 0.9})
    report = run_gate(run, GateConfig())
    more = read_results(run / RESULTS_NAME).tasks[0].more_cases
    assert more is not None
    [finding] = report.findings
    assert finding.insufficient and finding.rule == (
        f"undecided: about {int(more):,} more new cases, one attempt each (4 in 5 chance to settle)"
    )


def test_against_the_gate_s_own_target_it_states_no_count(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1" * 10), settings={"target": 0.9})
    report = run_gate(run, GateConfig(targets={"s/t": 0.85}))
    [finding] = report.findings
    assert finding.insufficient and "more new cases" not in finding.rule
    assert finding.rule.endswith("against the task's target, not 0.85")
