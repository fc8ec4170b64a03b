"""The gate's summary against a baseline links the report's view of what flipped since it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import run_cli
from tests.gate.test_gate import BASE_FAILS, outcomes, run_dir


def test_the_summary_links_changes_html_by_a_relative_path(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", outcomes(BASE_FAILS))
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS | {1, 2}))
    assert run_cli("report", str(now), "--baseline", str(base)).exit_code == 0
    result = run_cli("gate", str(now), "--baseline", str(base))
    assert result.exit_code in (0, 1, 3), result.output
    summary = (now / "gate" / "summary.md").read_text(encoding="utf-8")
    link = re.search(r"\[changes\.html\]\(([^)]+)\)", summary)
    assert link is not None and link.group(1) == "../changes.html"
    assert (now / "gate" / link.group(1)).resolve() == (now / "changes.html").resolve()
    assert f"`margin report {now} --baseline {base}`" in summary
    assert "not written yet" not in summary


def test_without_a_baseline_the_summary_has_no_link(tmp_path: Path) -> None:
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS))
    run_cli("gate", str(now))
    assert "changes.html" not in (now / "gate" / "summary.md").read_text(encoding="utf-8")


def test_a_summary_elsewhere_links_back_to_the_run(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", outcomes(BASE_FAILS))
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS))
    run_cli("gate", str(now), "--baseline", str(base), "--out", str(tmp_path / "ci"))
    summary = (tmp_path / "ci" / "gate" / "summary.md").read_text(encoding="utf-8")
    assert "[changes.html](../../now/changes.html) (not written yet)" in summary
