"""No rate without its n and interval (issue 25, item 8), and silent failures shown (item 2).

A run built by hand with repeats, a paraphrase, a noise level and guard outcomes is rendered;
every percentage in index.html and summary.md must come with a 95% interval right after it and
an n: passes/n right before it, `over N cases` after the interval (a mean over cases), or
`(k/n)` closing the clause. A few percentages are not rates and are allowed by name below.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from margin.report import render_report
from margin.results.document import read_results
from margin.stats.numbers import interval
from margin.stats.phrases import NOT_RECORDED
from tests.report.conftest import make_run
from tests.stats.records import record

PERCENT = re.compile(r"\d+(?:\.\d+)?%")
INTERVAL = r"\[\d+\.\d, \d+\.\d\]"
COUNT = r"\d[\d,]*/\d[\d,]*"
AFTER = re.compile(rf"\s*(?:\|\s*)?{INTERVAL}")
COUNT_BEFORE = re.compile(rf"{COUNT} $")
N_AFTER = re.compile(rf"\s*(?:\|\s*)?{INTERVAL}(?: over \d[\d,]* cases?\b|[^|;%\[]*\({COUNT}\))")
ALLOWED = [
    # the confidence level of the intervals, in legends and headers: not a measured rate
    re.compile(r"95% (?:interval|intervals|lower bound|upper bound)\b"),
    re.compile(r"\[95%\]"),
]


def bare_rates(text: str) -> list[str]:
    """The lines of `text` holding a percentage without an interval right after it, or without
    an n (passes/n right before it, `over N cases` or `(k/n)` after the interval)."""
    found = []
    for line in text.splitlines():
        allowed = {m.start() for pattern in ALLOWED for m in pattern.finditer(line)}
        for match in PERCENT.finditer(line):
            if match.start() in allowed:
                continue
            before, after = line[: match.start()], line[match.end() :]
            has_interval = AFTER.match(after) is not None
            has_n = COUNT_BEFORE.search(before) is not None or N_AFTER.match(after) is not None
            if not (has_interval and has_n):
                found.append(line.strip())
    return found


def page_text(page: str) -> str:
    """index.html as lines of text: one per table row, paragraph or list item, cells joined
    by ` | `; scripts, styles and chart axis ticks left out (tick labels such as `50%` and
    `target 90%` mark the axis scale and the target, not a measured rate; each point's label,
    a rate, stays)."""
    page = re.sub(r"<(script|style|head)\b.*?</\1>", "", page, flags=re.S)
    page = re.sub(r"\s+", " ", page)  # HTML's whitespace: a row's cells stay on one line
    page = re.sub(r'<text[^>]*class="tick"[^>]*>.*?</text>', "", page, flags=re.S)
    page = re.sub(r"</t[dh]>", " | ", page)
    page = re.sub(r"</(tr|p|li|div|title|h\d|summary|pre)>|<br\s*/?>", "\n", page)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def guarded(model: str, case: int, outcome: str, repeat: int, **kwargs: object):  # type: ignore[no-untyped-def]
    """`pass`, `detected` (the schema guard failed) or `silent` (the schema passed, the
    reference check `fields` failed)."""
    checks = {
        "pass": {"schema": True, "fields": True},
        "detected": {"schema": False, "fields": False},
        "silent": {"schema": True, "fields": False},
    }[outcome]
    base = record(model, f"c{case}", outcome == "pass", repeat=repeat, checks=checks, **kwargs)  # type: ignore[arg-type]
    return base.model_copy(
        update={
            "guards_passed": outcome != "detected",
            "guards_failed": ["schema"] if outcome == "detected" else [],
        }
    )


PLANS = {"big": "P" * 19 + "S", "small": "P" * 12 + "DDDSS" + "PPS"}
NOISE = {"variant": "p0~typos@0.1v1", "noise": ("typos", 0.1)}


def records() -> list:  # type: ignore[type-arg]
    """20 cases × 3 repeats × (clean, a paraphrase, typos at 0.1). big: case 19 silently
    wrong everywhere (9 of 180); small: 3 silent and 3 detected cases, its c0 silently wrong
    on the third repeat of both wordings, and every case divisible by 4 caught under noise."""
    out = []
    for model, plan in PLANS.items():
        cost = 0.003 if model == "big" else 0.001
        for i, letter in enumerate(plan):
            outcome = {"P": "pass", "D": "detected", "S": "silent"}[letter]
            for r in range(3):
                clean = "silent" if (model, i, r) == ("small", 0, 2) else outcome
                out.append(guarded(model, i, clean, r, cost=cost))
                out.append(guarded(model, i, clean, r, variant="p1", paraphrase=1, cost=cost))
                out.append(guarded(model, i, outcome if i % 4 else "detected", r, **NOISE))
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_run(tmp_path_factory.mktemp("rates") / "run", records(), settings={"target": 0.6})
    render_report(folder)
    return folder


def test_the_check_finds_bare_rates() -> None:
    assert bare_rates("partial 89.2%") == ["partial 89.2%"]
    assert bare_rates("86.7% [70.9, 95.8]") == ["86.7% [70.9, 95.8]"]  # no n
    assert bare_rates("156/180 86.7%") == ["156/180 86.7%"]  # no interval
    assert bare_rates("k=2: 62.5% over 8 cases [40.1, 80.2]") != []  # the interval must follow
    assert bare_rates("156/180 86.7% | [70.9, 95.8] | 89.2% [67.2, 98.5] over 20 cases") == []
    assert bare_rates("5.0% [0.1, 24.9] of answers wrong and undetectable (9/180).") == []
    assert bare_rates("a 95% interval") == []


def test_no_rate_in_the_page_or_the_summary_without_n_and_interval(rendered: Path) -> None:
    page = (rendered / "index.html").read_text(encoding="utf-8")
    summary = (rendered / "summary.md").read_text(encoding="utf-8")
    assert bare_rates(page_text(page)) == []
    assert bare_rates(summary) == []
    # the fixture shows what the check is for: pass^k above 1, partial credit, consistency,
    # the paraphrase spread, silent failures, the conditions under noise
    text = page_text(page)
    for shown in ("k=3: ", "over 20 cases", "Paraphrase spread", "typos@0.1", "15/20 75.0% ["):
        assert shown in text, shown


def test_silent_failures_by_hand_in_tables_and_the_recommendation(rendered: Path) -> None:
    results = read_results(rendered)
    rows = {t.model: t for t in results.tasks}
    # big: case 19 × 3 repeats × 3 variants; small: c15, c19 everywhere (18), c16 clean only
    # (6, caught under noise as 16 % 4 == 0), c0's third repeat in two wordings (2)
    assert (rows["big"].silent, rows["big"].guarded_n) == (9, 180)
    assert (rows["small"].silent, rows["small"].guarded_n) == (26, 180)
    summary = (rendered / "summary.md").read_text(encoding="utf-8")
    big = rows["big"]
    assert big.silent_low is not None and big.silent_high is not None
    assert f"9/180 5.0% {interval(big.silent_low, big.silent_high)}" in summary
    [said] = [line for line in summary.splitlines() if line.startswith("**")]
    assert "of answers wrong and undetectable (9/180)." in said
    page = (rendered / "index.html").read_text(encoding="utf-8")
    assert page.count('class="num silent"') == 4  # two models, ranking and by task
    assert "silent failures (wrong, every guard passed)" in page and 'id="silent-legend"' in page


def test_pass_1_is_the_pass_rate_and_pass_k_carries_its_cases(rendered: Path) -> None:
    results = read_results(rendered)
    for model in PLANS:
        row = next(t for t in results.tasks if t.model == model)
        one = next(p for p in results.pass_k if p.model == model and p.k == 1)
        assert one.pass_hat_k == pytest.approx(row.passes / row.n)
        assert one.cases == row.cases == 20
        assert one.pass_hat_k_low is not None and one.pass_hat_k_low < one.pass_hat_k


def test_a_journal_before_guards_says_not_recorded(tmp_path: Path) -> None:
    old = [
        r.model_copy(update={"guards_passed": None, "guards_failed": []})
        for r in records()
        if r.model == "big"
    ]
    folder = make_run(tmp_path / "run", old, settings={"target": 0.6})
    render_report(folder)
    page = (folder / "index.html").read_text(encoding="utf-8")
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    # per feature, ranking, by task, the recommendation
    assert page.count(NOT_RECORDED) == 4
    assert summary.count(NOT_RECORDED) == 4
    assert f"answers wrong and undetectable: {NOT_RECORDED}" in summary
