"""The model-level pass^k on the page: pooled over all the model's cases, so pass^1 is its
pass rate on the same attempts however many cases each task has."""

from __future__ import annotations

from margin.report.views import model_pass_k
from margin.results.rows import PassKRow
from margin.stats import TASK, attempts_of, pass_k_table
from tests.stats.records import record


def test_model_pass_1_is_the_pass_rate_when_tasks_differ_in_size() -> None:
    tables = {"small": ["00", "01"], "large": ["11", "11", "11", "11", "11", "10"]}
    records = [
        record("m", f"c{i}", ch == "1", task=task, repeat=r)
        for task, table in tables.items()
        for i, row in enumerate(table)
        for r, ch in enumerate(row)
    ]
    frame = attempts_of(records).frame
    rows = [PassKRow.model_validate(r) for r in pass_k_table(frame, TASK).to_dict("records")]
    passes, n = 12, 16  # 1/4 on the small task, 11/12 on the large one
    assert model_pass_k(rows, repeats=1) == {"m": (1, passes / n, 8)}  # over all 8 cases
    # per case C(c,2)/C(2,2): small 0, 0; large 1, 1, 1, 1, 1, 0 → 5 of 8 cases
    assert model_pass_k(rows, repeats=2)["m"] == (2, 5 / 8, 8)
    # the old unweighted mean over tasks gave (1/4 + 11/12) / 2 = 58.3% for pass^1
    assert passes / n != (1 / 4 + 11 / 12) / 2
