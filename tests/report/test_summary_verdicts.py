"""summary.md never puts a verdict beside an interval that is not its own: a model's pooled
interval is shown with its tasks' verdicts counted, each task's interval with its verdict."""

from __future__ import annotations

import re
from pathlib import Path

from margin.report import render_report
from margin.stats.intervals import rate_interval
from margin.stats.numbers import interval
from tests.report.conftest import make_run
from tests.stats.records import record

TWO_TASKS = """suite: s
target: 0.9
tasks:
  - id: t
    prompt: "Say {{ x }}"
    cases:
      - id: c
        vars: {x: "1"}
    validators:
      - must_not_contain: ["<script>"]
  - id: u
    prompt: "Say {{ x }}"
    cases:
      - id: c
        vars: {x: "1"}
    validators:
      - must_not_contain: ["<script>"]
"""


def test_a_models_verdict_is_its_tasks_combination_not_its_pooled_intervals(
    tmp_path: Path,
) -> None:
    # m: 200/200 on t, 5/10 on u: pooled 205/210 has a lower bound above 0.9, yet m falls
    # short on u; solid crosses both tasks
    records = [record("m", f"c{i}", True, task="t") for i in range(200)]
    records += [record("m", f"c{i}", i < 5, task="u") for i in range(10)]
    records += [record("solid", f"c{i}", True, task=task) for task in "tu" for i in range(60)]
    folder = make_run(tmp_path / "run", records)
    (folder / "suites" / "s.yaml").write_text(TWO_TASKS, encoding="utf-8")
    render_report(folder)
    text = (folder / "summary.md").read_text(encoding="utf-8")
    models = text.split("### Models")[1].split("### By task")[0]
    rows = {line.split(" | ")[1]: line for line in models.splitlines() if line.startswith("| ")}
    low, high = rate_interval(205, 210)  # 210 cases of one attempt each
    assert low > 0.9  # the pooled interval alone would cross
    pooled = f"| 205/210 97.6% | {interval(float(low), float(high))} |"
    assert f"{pooled} falls short on 1 of 2 tasks |" in rows["m"]
    assert "| crosses every task |" in rows["solid"]
    assert "tasks against their targets" in models
    for line in rows.values():  # no bare verdict beside a pooled interval
        cells = [cell.strip() for cell in line.split("|")]
        assert not {"crosses", "falls short", "undecided"} & set(cells)
    # each task's own interval keeps its own verdict
    tasks = text.split("### By task")[1]
    assert "| s/u | 0.9 | m |" in tasks and "| 5/10 50.0% |" in tasks
    assert any(
        "| s/u | 0.9 | m |" in line and "| falls short |" in line for line in tasks.splitlines()
    )
    # the page: the same combination under the same header, pass^1 equal to the pass rate
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "<th>95% interval</th><th>tasks against their targets</th>" in page
    assert ">falls short on 1 of 2</td>" in page
    assert re.search(r"k=1: 97\.6% \[\d+\.\d, \d+\.\d\] over 210 cases", page)
