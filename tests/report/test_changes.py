"""Since the baseline: `margin report RUN --baseline BASE` lists exactly the attempts that
flipped, per model, with both answers side by side."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from margin.gate.output import CHANGES_PAGE
from margin.report.changes import CHANGES_NAME
from tests.conftest import run_cli
from tests.report.conftest import HOSTILE, make_run
from tests.report.test_answers import answered
from tests.stats.records import record

CONDITIONS = (("p0", 0), ("p1", 1))


def outcomes(side: str, flips: dict[tuple[str, str, str], bool]) -> list:  # type: ignore[type-arg]
    """Models a and b, cases c0–c3 under p0 and p1: every attempt passes unless `flips` (model,
    case, variant) says otherwise. Each answer names its side."""
    return [
        answered(
            model,
            f"c{i}",
            flips.get((model, f"c{i}", variant), True),
            f"{model} c{i} {variant} in the {side}",
            variant=variant,
            paraphrase=paraphrase,
        )
        for model in ("a", "b")
        for i in range(4)
        for variant, paraphrase in CONDITIONS
    ]


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Hand-known flips. a: c1/p0 pass → fail, c2/p1 fail → pass. b: c0/p0 pass → fail, and
    c3/p1 fails in the baseline but is an infra error now (not compared). The baseline's b
    c2/p0 first failed, then its retry passed (the latest record counts: no flip). a c9 is
    only in this run."""
    base = outcomes("baseline", {("a", "c2", "p1"): False, ("b", "c3", "p1"): False})
    base.insert(0, answered("b", "c2", False, "an earlier try"))
    now = outcomes("run", {("a", "c1", "p0"): False, ("b", "c0", "p0"): False})
    now = [r for r in now if not (r.model == "b" and r.case == "c3" and r.variant == "p1")]
    now.append(record("b", "c3", None, variant="p1", paraphrase=1))
    now.append(answered("a", "c9", True, "new case"))
    now[0] = now[0].model_copy(update={"output": HOSTILE})  # a c0 p0: hostile, not flipped
    return make_run(tmp_path / "base", base), make_run(tmp_path / "run", now)


def flips_on(page: str) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """(model, direction) → the (case, variant, repeat) rows listed under it."""
    found: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for part in page.split('<table class="answers flips"')[1:]:
        head = re.match(r' data-model="([^"]+)" data-direction="([^"]+)"', part)
        assert head is not None
        rows = re.findall(
            r'<tr class="flip" data-case="([^"]+)" data-variant="([^"]+)" data-repeat="(\d+)"',
            part,
        )
        found[(head.group(1), head.group(2))] = rows
    return found


def test_the_baseline_view_lists_exactly_the_flipped_attempts(runs: tuple[Path, Path]) -> None:
    base, now = runs
    result = run_cli("report", str(now), "--baseline", str(base))
    assert result.exit_code == 0, result.output
    assert f"wrote {now / CHANGES_NAME}" in result.stdout
    page = (now / CHANGES_NAME).read_text(encoding="utf-8")
    assert flips_on(page) == {
        ("a", "pass-fail"): [("c1", "p0", "0")],
        ("a", "fail-pass"): [("c2", "p1", "0")],
        ("b", "pass-fail"): [("c0", "p0", "0")],
    }
    # both answers, side by side, in the flipped row
    row = page.split('data-case="c1" data-variant="p0"')[1].split("</tr>")[0]
    assert row.index("a c1 p0 in the baseline") < row.index("a c1 p0 in the run")
    assert "<li><b>v</b>: not 42</li>" in row
    # the counts: 8 compared for a (c9 only in this run), 7 for b (c3/p1 an infra error now)
    summary = page.split('id="changes-summary"')[1].split("</table>")[0]
    cells = re.findall(r'<th scope="row">(\w)</th>((?:<td class="num">\d+</td>)+)', summary)
    counts = {m: re.findall(r">(\d+)<", tds) for m, tds in cells}
    assert counts == {"a": ["8", "1", "1", "1", "0"], "b": ["7", "1", "0", "0", "0"]}
    assert "<script>document" not in page and page.count("<script>") == 1
    index = (now / "index.html").read_text(encoding="utf-8")
    assert f'<a href="{CHANGES_NAME}">' in index


def test_a_baseline_without_a_journal_is_one_line(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    _, now = runs
    (tmp_path / "empty").mkdir()
    result = run_cli("report", str(now), "--baseline", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ")
    assert "--baseline must be a run directory with its journal" in result.stderr
    assert not (now / CHANGES_NAME).exists()


def test_the_gate_names_the_page_the_report_writes() -> None:
    assert CHANGES_PAGE == CHANGES_NAME
