"""The score stage on its own: a run directory in, results.json out (margin.results.score)."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.errors import UserError
from margin.results.document import RESULTS_NAME, Results, read_results
from margin.results.score import results_of, score_run
from tests.report.conftest import make_run
from tests.stats.records import outcomes


def without_time(results: Results) -> dict:  # type: ignore[type-arg]
    data = results.model_dump()
    data["run"].pop("scored_at")
    return data


def test_score_run_writes_results_that_read_results_accepts(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1101x"))
    results = score_run(run)
    assert read_results(run / RESULTS_NAME) == results  # what it returns is what it wrote
    assert read_results(run) == results
    (task,) = results.tasks
    assert (task.model, task.suite, task.task, task.passes, task.n) == ("m", "s", "t", 3, 4)
    assert task.infra_errors == 1
    assert results.run.attempts == 5
    assert sorted(p.name for p in run.iterdir()) == ["journal.jsonl", RESULTS_NAME, "run.json",
                                                     "suites"]  # fmt: skip


def test_score_run_into_a_new_folder_leaves_the_run_as_it_was(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "10"))
    out = tmp_path / "new" / "scores"
    results = score_run(run, out)
    assert read_results(out / RESULTS_NAME) == results
    assert not (run / RESULTS_NAME).exists()


def test_results_of_builds_the_same_document_and_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1101"))
    built = results_of(run)
    assert not (run / RESULTS_NAME).exists()
    assert without_time(built) == without_time(score_run(run))


def test_a_damaged_journal_leaves_no_folder_behind(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "11"))
    journal = run / "journal.jsonl"
    journal.write_text(journal.read_text(encoding="utf-8") + "not json\n", encoding="utf-8")
    out = tmp_path / "new" / "scores"
    with pytest.raises(UserError, match=r"journal\.jsonl:3"):
        score_run(run, out)
    assert not (tmp_path / "new").exists()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a margin run directory"):
        score_run(tmp_path)
    assert not (tmp_path / RESULTS_NAME).exists()
