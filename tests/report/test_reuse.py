"""`margin report` reuses a results.json scored from the run's files as they are now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import margin.results.score as score_module
from margin.cli.report import command
from margin.journal.records import Journal
from margin.report import render_report
from tests.report.conftest import make_run
from tests.stats.records import record


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = make_run(tmp_path / "run", [record("a", "c", True), record("b", "c", False)])
    render_report(folder)
    return folder


def scored_at(folder: Path) -> str:
    return str(json.loads((folder / "results.json").read_text())["run"]["scored_at"])


def no_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("scored again")

    monkeypatch.setattr(score_module, "results_of", refuse)


def test_results_json_records_what_it_was_scored_from(run: Path) -> None:
    source = json.loads((run / "results.json").read_text())["run"]["source"]
    assert set(source["files"]) == {"run.json", "journal.jsonl", "judges.json", "suites/s.yaml"}
    assert source["files"]["judges.json"] is None
    assert source["files"]["journal.jsonl"].startswith(f"{(run / 'journal.jsonl').stat().st_size}:")


def test_an_unchanged_run_is_not_scored_again(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = scored_at(run)
    (run / "index.html").unlink()
    no_scoring(monkeypatch)
    result = CliRunner().invoke(command, [str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "index.html").exists()
    assert scored_at(run) == before


def test_a_journal_that_gained_a_record_is_scored_again(run: Path) -> None:
    with Journal(run / "journal.jsonl") as journal:
        journal.append(record("a", "c", False, repeat=1))
    render_report(run)
    assert json.loads((run / "results.json").read_text())["run"]["attempts"] == 3


def test_a_changed_suite_copy_is_scored_again(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = run / "suites" / "s.yaml"
    copy.write_text(copy.read_text().replace("target: 0.9", "target: 0.5"))
    no_scoring(monkeypatch)
    with pytest.raises(AssertionError, match="scored again"):
        render_report(run)


def test_rescore_scores_an_unchanged_run(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_scoring(monkeypatch)
    result = CliRunner().invoke(command, [str(run), "--rescore"])
    assert isinstance(result.exception, AssertionError)


def test_a_results_json_without_the_record_is_scored_again(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads((run / "results.json").read_text())
    del data["run"]["source"]
    (run / "results.json").write_text(json.dumps(data))
    no_scoring(monkeypatch)
    with pytest.raises(AssertionError, match="scored again"):
        render_report(run)


def test_reporting_a_scored_run_loads_no_scoring_stack(run: Path) -> None:
    """`margin report` on a run whose results.json is current imports neither pandas nor
    scipy.stats: a fresh interpreter renders it and lists what it loaded."""
    (run / "index.html").unlink()
    code = (
        "import sys; from margin.cli.main import main; sys.argv = ['margin', 'report', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'scipy.stats', 'statsmodels')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True
    )
    assert (run / "index.html").exists()
    assert done.stdout.strip().splitlines()[-1] == "[]"
