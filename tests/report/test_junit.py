"""junit.xml's undecided cases say what would settle them in the units summary.md uses."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from margin.report import render_report
from margin.results.document import RESULTS_NAME, read_results
from tests.report.conftest import make_run
from tests.stats.records import outcomes


def test_an_undecided_case_is_skipped_with_the_new_cases_that_settle_it(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1" * 10), settings={"target": 0.9})
    render_report(run)
    more = read_results(run / RESULTS_NAME).tasks[0].more_cases
    assert more is not None
    skipped = ET.parse(run / "junit.xml").getroot().find("testsuite/testcase/skipped")
    assert skipped is not None
    message = skipped.get("message") or ""
    assert message.startswith("undecided: 10/10 100.0% [") and "straddles target 0.9" in message
    assert message.endswith(
        f"; about {int(more):,} more new cases, one attempt each (4 in 5 chance to settle)"
    )
