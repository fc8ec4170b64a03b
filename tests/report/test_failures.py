"""The drill-down reads the journal through its reader: the latest record of each attempt,
whatever the line's spelling, and only failing records are shown."""

from __future__ import annotations

import json
from pathlib import Path

from margin.journal.records import JOURNAL_NAME
from margin.report.views import failures, latest_failures
from margin.results.score import score_run
from margin.validators import Verdict
from tests.report.conftest import make_run
from tests.stats.records import outcomes, record


def keys(journal: Path) -> list[str]:
    return [r.key for r in latest_failures(journal)]


def test_the_latest_record_of_each_attempt_decides(tmp_path: Path) -> None:
    retried = [record("m", "c0", None), record("m", "c0", False)]  # an infra error, then a fail
    fixed = [record("m", "c1", False), record("m", "c1", True)]  # a fail, retried to a pass
    run = make_run(tmp_path / "run", [*retried, *fixed, record("m", "c2", True)])
    assert keys(run / JOURNAL_NAME) == ["m|s/t/c0|p0|r0"]


def test_a_failing_verdict_of_an_unscored_attempt_is_shown(tmp_path: Path) -> None:
    crashed = Verdict(validator="v", passed=False, score=0.0, reason="crashed", unscored=True)
    unscored = record("m", "c0", True).model_copy(
        update={"verdicts": [crashed], "passed": None, "error": "Unscored"}
    )
    run = make_run(tmp_path / "run", [unscored, record("m", "c1", True)])
    assert keys(run / JOURNAL_NAME) == ["m|s/t/c0|p0|r0"]


def test_records_are_read_not_matched_as_text(tmp_path: Path) -> None:
    """A journal written with spaces (by hand, or another tool) is the same journal."""
    run = make_run(tmp_path / "run", outcomes("m", "0110"))
    journal = run / JOURNAL_NAME
    lines = journal.read_text(encoding="utf-8").splitlines()
    spaced = [json.dumps(json.loads(line), ensure_ascii=False) for line in lines]
    journal.write_text("\n".join(spaced) + "\n", encoding="utf-8")
    assert keys(journal) == ["m|s/t/c0|p0|r0", "m|s/t/c3|p0|r0"]
    view = failures(journal, score_run(run))
    assert view["total"] == 2 and [f["case"] for f in view["shown"]] == ["c0", "c3"]


def test_no_journal_no_failures(tmp_path: Path) -> None:
    assert latest_failures(tmp_path / JOURNAL_NAME) == []
