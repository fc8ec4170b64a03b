"""The answers side by side: every model's answer per case and condition, filters that hide what
agrees, inert hostile answers, and a capped page with --full pages for a large run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from margin.journal.records import MessageRecord
from margin.report import render_report
from margin.validators import Verdict
from tests.conftest import ROOT, run_cli
from tests.report.browser import visit
from tests.report.conftest import HOSTILE, make_run
from tests.stats.records import record

ARTIFACTS = ROOT / "test-artifacts"
MODELS = ("small", "medium", "large")


def answered(
    model: str, case: str, passed: bool, answer: str, silent: bool = False, **kwargs: object
):  # type: ignore[no-untyped-def]
    """A record with its answer, its prompt and, when it failed, a reason (a guard caught the
    failure unless it is `silent`)."""
    base = record(model, case, passed, **kwargs)  # type: ignore[arg-type]
    verdict = Verdict(
        validator="v", passed=passed, score=float(passed), reason="" if passed else "not 42"
    )
    prompt = f"What is {case}? ({base.variant})"
    return base.model_copy(
        update={
            "output": answer,
            "messages": [MessageRecord(role="user", content=prompt)],
            "verdicts": [verdict],
            "guards_passed": passed or silent,
        }
    )


def fixture_records() -> list:  # type: ignore[type-arg]
    """Case c0: all three pass (agree). c1: small fails, the others pass (disagree). c2: every
    model fails; large's answer is hostile. c3: medium fails silently in p1 only. Every case
    under p0 and the paraphrase p1."""
    plan = {
        "c0": {"small": True, "medium": True, "large": True},
        "c1": {"small": False, "medium": True, "large": True},
        "c2": {"small": False, "medium": False, "large": False},
        "c3": {"small": True, "medium": True, "large": True},
    }
    records = []
    for variant, paraphrase in (("p0", 0), ("p1", 1)):
        for case, outcomes in plan.items():
            for model, ok in outcomes.items():
                answer = f"{model} says {case} {variant}"
                if case == "c2" and model == "large":
                    answer = HOSTILE
                r = answered(model, case, ok, answer, variant=variant, paraphrase=paraphrase)
                records.append(r)
    silent = answered("medium", "c3", False, "medium is wrong", True, variant="p1", paraphrase=1)
    return [*records, silent]  # a later record replaces medium's pass on c3/p1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = [{"name": n, "model": f"openai/{n}", "params": "1B"} for n in MODELS]
    folder = make_run(tmp_path_factory.mktemp("answers") / "run", fixture_records(), models)
    render_report(folder)
    return folder


def rows_of(page: str) -> dict[str, str]:
    """Each answer row's header text (case · condition) and its data-show flags."""
    found = re.findall(
        r'<tr class="answer-row" data-show="([^"]*)"[^>]*>\s*<th scope="row">([^<]*)<', page
    )
    return {head.strip(): flags for flags, head in found}


def test_every_row_is_on_the_page_with_its_flags(run: Path) -> None:
    page = (run / "index.html").read_text(encoding="utf-8")
    rows = rows_of(page)
    assert set(rows) == {f"c{i} · p{p}" for i in range(4) for p in (0, 1)}
    assert rows["c0 · p0"] == "" and rows["c2 · p0"] == ""  # all pass, all fail: agree
    assert rows["c1 · p0"].startswith("disagree") and rows["c1 · p1"].startswith("disagree")
    assert "silent" in rows["c3 · p1"] and "disagree" in rows["c3 · p1"]
    assert "silent" not in rows["c3 · p0"]
    # real table semantics: a caption, column and row headers
    assert "<caption>s/t: 8 of 8 rows" in page
    assert page.count('<th scope="col">small</th>') == 1
    assert '<label for="answers-show">show</label>' in page
    # the failing validator's reason sits in the failing cell
    assert "<li><b>v</b>: not 42</li>" in page
    assert "&lt;script&gt;document.title" in page and page.count("<script>") == 1


def test_the_side_by_side_view_in_real_headless_chromium(run: Path) -> None:
    cells = "document.querySelectorAll('#answers-s-t tbody tr')"
    expressions = {
        "title": "document.title",
        "columns": "[...document.querySelectorAll('#answers-s-t thead th')].map(h => h.textContent.trim())",
        "c1": f"(() => {{ const r = [...{cells}].find(r => r.querySelector('th').textContent.startsWith('c1 · p0'));"
        " return [...r.querySelectorAll('td pre')].slice(0, 3).map(p => p.textContent) })()",
        "c1_status": f"(() => {{ const r = [...{cells}].find(r => r.querySelector('th').textContent.startsWith('c1 · p0'));"
        " return [...r.querySelectorAll('td .status')].map(s => s.textContent) })()",
        "shown": "[...document.querySelectorAll('tr.answer-row:not([hidden])')].map(r => r.querySelector('th').firstChild.textContent.trim())",
        "counter": "document.getElementById('answers-shown').textContent",
        "enabled": "!document.getElementById('answers-show').disabled",
        "images": "document.querySelectorAll('img, iframe, a[href^=javascript]').length",
    }
    actions = [
        "(() => { const s = document.getElementById('answers-show');"
        " s.value = 'disagree'; s.dispatchEvent(new Event('change')); })()",
        "(() => { const r = [...document.querySelectorAll('tr.answer-row')].find(r => r.textContent.includes('PWNED'));"
        " r.querySelectorAll('details').forEach(d => d.open = true); })()",
    ]

    seen = visit(run / "index.html", expressions, ARTIFACTS / "answers.png", actions)
    assert seen.values["title"] == "margin report · test"
    assert seen.values["columns"][:4] == ["case · condition", "small", "medium", "large"]
    assert seen.values["c1"] == ["small says c1 p0", "medium says c1 p0", "large says c1 p0"]
    assert seen.values["c1_status"] == ["fail", "pass", "pass"]
    assert seen.values["shown"] == ["c1 · p0", "c1 · p1", "c3 · p1"]
    assert seen.values["counter"] == "3" and seen.values["enabled"] is True
    assert seen.values["images"] == 0
    assert seen.dialogs == [] and seen.exceptions == [] and seen.console_errors == []
    assert all(url.startswith("file://") for url in seen.requests), seen.requests


def test_the_condition_filter_and_the_recommended_model(tmp_path: Path) -> None:
    """mid is recommended (it crosses on 100 cases, cheaper than big); the filter keeps the rows
    where it fails and each condition's rows."""
    records = []
    for i in range(100):
        for variant, paraphrase in (("p0", 0), ("p1", 1)):
            ok = not (i == 7 and variant == "p1")
            records.append(
                answered(
                    "mid", f"c{i}", ok, "m", variant=variant, paraphrase=paraphrase, cost=0.001
                )
            )
            records.append(
                answered(
                    "big", f"c{i}", True, "b", variant=variant, paraphrase=paraphrase, cost=0.01
                )
            )
    folder = make_run(tmp_path / "run", records)
    render_report(folder)
    results = json.loads((folder / "results.json").read_text())
    assert results["recommendation"]["model"] == "mid"
    page = (folder / "index.html").read_text(encoding="utf-8")
    rows = rows_of(page)
    assert [h for h, f in rows.items() if "recommended-fails" in f] == ["c7 · p1"]
    assert 'mid <span class="small muted">(recommended)</span>' in page
    # capped at 50 of 200 rows: the notable row first, then the others in order
    assert "<caption>s/t: 50 of 200 rows shown; 150 left out (0 where models disagree, 0 " in page
    conditions = re.findall(r'class="answer-row" data-show="[^"]*" data-condition="([^"]+)"', page)
    assert conditions.count("p0") == 25 and conditions.count("p1") == 25


def big_journal(folder: Path, models: int = 4, cases: int = 2500, repeats: int = 5) -> int:
    """A journal of models × cases × 2 conditions × repeats records, written as JSON lines
    directly (100,000 by default); returns the number of rows (case × condition × repeat)."""
    template = answered("m0", "c0", True, "x").model_dump(mode="json")
    (folder / "suites").mkdir(parents=True)
    make_run(folder, [record(f"m{m}", "c0", True) for m in range(models)])
    with (folder / "journal.jsonl").open("w", encoding="utf-8") as out:
        for m in range(models):
            for c in range(cases):
                for variant in ("p0", "p1"):
                    for r in range(repeats):
                        ok = (c * 7 + m * 3 + r) % 11 != 0
                        line = dict(template, model=f"m{m}", case=f"c{c}", variant=variant,
                                    paraphrase=int(variant[1]), repeat=r, passed=ok,
                                    key=f"m{m}|s/t/c{c}|{variant}|r{r}",
                                    output=f"Answer of m{m} to case {c}: " + "words " * 30,
                                    messages=[{"role": "user", "content": f"Case {c}: " + "prompt text " * 20}],
                                    verdicts=[dict(template["verdicts"][0], passed=ok, reason="" if ok else "not 42")])  # fmt: skip
                        out.write(json.dumps(line) + "\n")
    return cases * 2 * repeats


def test_a_100000_record_run_stays_small_and_full_pages_split(tmp_path: Path) -> None:
    rows = big_journal(tmp_path / "run")
    result = run_cli("report", str(tmp_path / "run"), "--full")
    assert result.exit_code == 0, result.output
    index = tmp_path / "run" / "index.html"
    assert index.stat().st_size < 5_000_000
    page = index.read_text(encoding="utf-8")
    caption = re.search(r"<caption>s/t: (\d+) of (\d+) rows shown; (\d+) left out", page)
    assert caption is not None
    shown, total, left_out = map(int, caption.groups())
    assert total == rows and shown + left_out == rows and 0 < shown <= 50
    pages = sorted((tmp_path / "run").glob("answers-*.html"))
    assert len(pages) > 1 and all(p.name in page for p in pages)
    assert all(p.stat().st_size < 5_000_000 for p in pages)
    on_pages = sum(p.read_text(encoding="utf-8").count('<tr class="answer-row"') for p in pages)
    assert on_pages == rows
    assert [f"wrote {p}" in result.stdout for p in pages] == [True] * len(pages)


def test_full_pages_carry_the_same_policy_and_escape_answers(tmp_path: Path, run: Path) -> None:
    files = render_report(run, out=tmp_path / "out", full=True)
    assert [p.name for p in files.pages] == ["answers-1.html"]
    page = files.pages[0].read_text(encoding="utf-8")
    index = files.html.read_text(encoding="utf-8")
    policy = re.search(r'content="(default-src \'none\'[^"]+)"', page)
    assert policy is not None and policy.group(1) in index  # the same script, by the same hash
    assert "&lt;script&gt;document.title" in page and page.count("<script>") == 1
    assert page.count('<tr class="answer-row"') == 8 and '<a href="index.html">' in page
    assert '<a href="answers-1.html">answers-1.html</a>' in index
