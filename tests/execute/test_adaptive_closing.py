"""A cell the adaptive loop closes never reads "undecided" in the report (issue 25, item 10).

The loop decides with the always-valid confidence sequence, the report with the fixed-n
`rate_interval`; a cell the sequence only `settled` (within ±δ of its target) used to close
while the report's interval still straddled the target, and summary.md then asked for "about N
more new cases" of a cell the run had stopped sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from margin.execute.adaptive import closing_verdicts, decided_cells
from margin.results.score import score_run
from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED, rate_interval, verdicts
from margin.stats.sequential import SETTLED, sequential_verdicts
from tests.report.conftest import make_run
from tests.stats.records import record

ALPHA, DELTA, TARGET = 0.05, 0.02, 0.9


def test_a_settled_cell_stays_open_while_the_report_straddles() -> None:
    # 3,600 of 4,000 on a 0.9 target: the sequence lies within ±0.02 (settled), the report's
    # interval straddles 0.9 (undecided)
    assert sequential_verdicts(3600, 4000, TARGET, ALPHA, DELTA)[()] == SETTLED
    assert verdicts(*rate_interval(3600, 4000), TARGET)[()] == UNDECIDED
    assert closing_verdicts(3600, 4000, TARGET, ALPHA)[()] == UNDECIDED


def test_a_cell_closes_with_the_verdict_the_sequence_and_the_report_share() -> None:
    closing = closing_verdicts(np.array([400, 0, 30]), np.array([400, 40, 40]), TARGET, ALPHA)
    assert list(closing) == [CROSSES, FALLS_SHORT, UNDECIDED]


def test_no_closed_cell_reads_undecided_in_the_results(tmp_path: Path) -> None:
    near = [record("near", f"c{i}", i % 10 != 0) for i in range(4000)]  # 3,600/4,000
    sure = [record("sure", f"c{i}", True) for i in range(400)]  # 400/400
    short = [record("short", f"c{i}", i % 2 == 0) for i in range(40)]  # 20/40
    run = make_run(tmp_path / "run", near + sure + short, settings={"target": TARGET})
    _, tasks = decided_cells(run / "journal.jsonl", {("s", "t"): TARGET}, ALPHA, DELTA)
    verdict = {row.model: row.verdict for row in score_run(run).tasks}
    assert verdict == {"near": UNDECIDED, "sure": CROSSES, "short": FALLS_SHORT}
    assert tasks == {("sure", "s", "t"), ("short", "s", "t")}
    assert all(verdict[model] != UNDECIDED for model, _, _ in tasks)
