"""The report from a hand-built journal: honest numbers, inert hostile text, valid files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from margin.report import render_report
from margin.results.document import SCHEMA_PATH, results_schema
from tests.conftest import ROOT, run_cli
from tests.report.browser import visit
from tests.report.conftest import hostile_failure, make_run
from tests.stats.records import record

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """good: 199/200 (one hostile failure with a 1 MB answer); twin: 200/200, dearer;
    weak: 1/200 (hostile failures)."""
    records = [record("good", f"c{i}", True, cost=0.001) for i in range(199)]
    records.append(hostile_failure("good", "c199", size=1_000_000))
    records += [record("twin", f"c{i}", True, cost=0.002) for i in range(200)]
    records += [record("weak", "c0", True, cost=0.0005)]
    records += [hostile_failure("weak", f"c{i}") for i in range(1, 200)]
    folder = make_run(tmp_path_factory.mktemp("report") / "run", records)
    files = render_report(folder)
    assert files.html == folder / "index.html"
    return folder


def test_results_json_validates_against_the_shipped_schema(report: Path) -> None:
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    assert data["results_version"] == 2
    assert (
        data["recommendation"]["model"] == "good" and data["recommendation"]["runner_up"] == "twin"
    )
    assert data["run"]["attempts"] == 600 and data["run"]["suites"][0]["sha256"]


def test_the_shipped_schema_is_the_models_schema() -> None:
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == results_schema()
    printed = run_cli("schema", "--kind", "results")
    assert json.loads(printed.stdout) == results_schema()


def test_junit_has_one_case_per_model_and_task(report: Path) -> None:
    root = ET.parse(report / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"good on s/t", "twin on s/t", "weak on s/t"}
    failure = cases["weak on s/t"].find("failure")
    assert failure is not None and "1/200 0.5% [" in (failure.get("message") or "")
    assert cases["good on s/t"].find("failure") is None


def test_summary_fits_a_ci_job_summary(report: Path) -> None:
    text = (report / "summary.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 1_000_000
    assert "**Recommended: good — crosses every task; overall 199/200 99.5% [" in text
    assert "<script>" not in text


def test_numbers_on_the_page_are_honest(report: Path) -> None:
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "199/200 99.5%" in page and "199/200 100" not in page
    assert "1/200 0.5%" in page and "1/200 0.0%" not in page
    # good and twin cannot be told apart on 1 discordant attempt: both rank 1, shown as tied
    assert '<td class="num">1</td><td>good</td><td>twin</td>' in page
    assert '<td class="num">1</td><td>twin</td><td>good</td>' in page


def test_hostile_text_is_escaped_and_clipped(report: Path) -> None:
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in page
    assert 'href="javascript' not in page and "<iframe" not in page
    assert page.count("<script>") == 1  # margin's own, allowed by its hash
    assert "more characters)" in page  # the 1 MB answer is clipped, and says so
    assert len(page.encode()) < 1_500_000


def test_a_wrong_templates_folder_is_one_line(tmp_path: Path, report: Path) -> None:
    result = run_cli("report", str(report), "--templates", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert "--templates must be a folder" in result.stderr


def test_user_templates_replace_margins_by_name(tmp_path: Path, report: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "summary.md.j2").write_text("custom {{ recommendation.model }} {{ '<b>' }}\n")
    result = run_cli(
        "report", str(report), "--templates", str(tmp_path / "t"), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "summary.md").read_text() == "custom good &lt;b&gt;\n"
    assert (tmp_path / "o" / "index.html").exists()


def test_the_page_in_real_headless_chromium(report: Path) -> None:
    expressions = {
        "title": "document.title",
        "recommendation": "(() => { const r = document.getElementById('recommendation').getBoundingClientRect();"
        " return r.width > 100 && r.height > 10 ? document.getElementById('recommendation').textContent.trim() : null })()",
        "chart": "(() => { const s = document.querySelector('svg.chart'); if (!s) return 0;"
        " const r = s.getBoundingClientRect(); return r.width * r.height })()",
        "first_after_sort": "document.querySelector('#ranking-table tbody tr td:nth-child(2)').textContent",
        "failures_shown": "document.querySelectorAll('details.failure:not([hidden])').length",
        "counter": "document.getElementById('failures-shown').textContent",
        "scripts": "document.scripts.length",
        # the decision per feature is the first thing on the page, and it is shown
        "first_section": "document.querySelector('body section').id",
        "first_heading": "document.querySelector('h2').textContent",
        "feature_choice": "(() => { const c = document.querySelector('#features-table tbody tr td:nth-child(4)');"
        " const r = c.getBoundingClientRect(); return r.width > 10 && r.top < 600 ? c.textContent.trim() : null })()",
    }
    actions = [
        # sort the ranking by reliability, ascending: weak comes first
        "document.querySelectorAll('#ranking-table thead th')[3].click()",
        # filter the drill-down to one model
        "(() => { const s = document.querySelector('select[data-filter=model]');"
        " s.value = 'good'; s.dispatchEvent(new Event('change')); })()",
    ]

    seen = visit(report / "index.html", expressions, ARTIFACTS / "report.png", actions)
    assert seen.values["title"] == "margin report · test"  # no injected script ran
    assert seen.values["recommendation"].startswith("Recommended: good")
    assert seen.values["chart"] > 10_000
    assert seen.values["first_after_sort"] == "weak"
    assert seen.values["failures_shown"] == 1 and seen.values["counter"] == "1"
    assert seen.values["scripts"] == 1
    assert seen.values["first_section"] == "features"
    assert seen.values["first_heading"] == "Decision per feature"
    assert seen.values["feature_choice"] == "good"
    assert seen.dialogs == [] and seen.exceptions == [] and seen.console_errors == []
    assert all(url.startswith("file://") for url in seen.requests), seen.requests
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_results_of_another_version_are_refused(tmp_path: Path) -> None:
    from margin.errors import UserError
    from margin.results.document import read_results

    (tmp_path / "results.json").write_text(json.dumps({"results_version": 99}))
    with pytest.raises(UserError, match="results version 99; this margin reads version 2"):
        read_results(tmp_path)


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path}: not a margin run directory (no run.json)"


def test_margin_and_capability_charts_from_noisy_results(tmp_path: Path) -> None:
    from margin.report.views import capability_charts, margin_charts
    from margin.results.document import read_results
    from tests.stats.records import outcomes

    records = outcomes("m", "1111111111") + outcomes("n", "1111100000")
    for level, results in [(0.05, "1111111111"), (0.1, "1111100000")]:
        noise = {"variant": f"p0~typos@{level}v1", "noise": ("typos", level)}
        records += outcomes("m", results, **noise) + outcomes("n", "0000000000", **noise)
    folder = make_run(
        tmp_path / "run",
        records,
        models=[
            {"name": "m", "model": "openai/m", "params": "1.5B"},
            {"name": "n", "model": "openai/n", "params": "0.5B"},
        ],
        settings={"target": 0.65},
    )  # fmt: skip  (10/10 crosses it: 0.025^(1/10) = 0.69)
    render_report(folder)
    results = read_results(folder)
    (chart,) = margin_charts(results)
    assert "s/t: pass rate under typos (ring = margin)" in chart
    assert chart.count('class="marked"') == 1  # m's margin (0.05) ringed; n has none
    assert ">clean<" in chart and ">0.05<" in chart and ">0.1<" in chart
    (curve,) = capability_charts(results)
    assert "model size (parameters, log scale)" in curve and ">n<" in curve
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "Each validator under each condition" in page and "typos@0.05" in page
