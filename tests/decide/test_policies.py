"""Delivery policies from recorded repeats, against closed forms (issue 13, in progress)."""

from __future__ import annotations

import numpy as np
import pytest

from margin.decide.policies import estimate, parse_policy
from margin.errors import UserError
from margin.stats import attempts_of
from tests.stats.records import record


def repeats(model: str, table: dict[str, str], cost: float = 0.001) -> list:  # type: ignore[type-arg]
    return [
        record(model, case, ch == "1", repeat=r, cost=cost)
        for case, row in table.items()
        for r, ch in enumerate(row)
    ]


def test_parse_and_refuse() -> None:
    assert parse_policy("retry(small, 2)").steps == (("small", 2),)
    assert parse_policy("cascade(small*2, big)", {"small", "big"}).steps == (
        ("small", 2),
        ("big", 1),
    )
    for bad in ("retry(small)", "cascade(small)", "retry(small, 0)", "escalate(a, b)"):
        with pytest.raises(UserError):
            parse_policy(bad)
    with pytest.raises(UserError, match="no model 'huge' in this run"):
        parse_policy("cascade(small, huge)", {"small", "big"})


def test_retry_uses_each_prompts_own_repeats() -> None:
    # case a: 1 pass in 4 repeats; case b: 4 of 4. Two tries fail together with
    # C(3,2)/C(4,2) = 1/2 on a (never on b): 0.75 — not 1 − (1 − 5/8)² = 0.86 from a pooled rate.
    frame = attempts_of(repeats("m", {"a": "1000", "b": "1111"})).frame
    result = estimate(frame, parse_policy("retry(m, 2)"), "s", "t")
    assert result.rate == pytest.approx(0.75)
    # expected calls: a needs 1 + P(first fails) = 1.75, b needs 1
    assert result.calls == pytest.approx((1.75 + 1) / 2)
    assert result.cost_per_1000 == pytest.approx((1.75 + 1) / 2 * 0.001 * 1000)
    assert result.low < result.rate < result.high and result.thin == 0


def test_cascade_cost_and_reliability_match_the_closed_form() -> None:
    small = repeats("small", {"a": "1100", "b": "0000", "c": "1111"}, cost=0.001)
    big = repeats("big", {"a": "1111", "b": "1110", "c": "1111"}, cost=0.01)
    frame = attempts_of(small + big).frame
    result = estimate(frame, parse_policy("cascade(small, big)"), "s", "t")
    fail_small = np.array([0.5, 1.0, 0.0])
    fail_big = np.array([0.0, 0.25, 0.0])
    assert result.rate == pytest.approx(np.mean(1 - fail_small * fail_big))
    assert result.calls == pytest.approx(np.mean(1 + fail_small))
    assert result.cost_per_1000 == pytest.approx(np.mean(0.001 + fail_small * 0.01) * 1000)


def test_thin_data_is_flagged_and_all_pass_is_not_a_point() -> None:
    frame = attempts_of(repeats("m", {f"c{i}": "11" for i in range(10)})).frame
    result = estimate(frame, parse_policy("retry(m, 3)"), "s", "t")
    assert result.thin == 10 and result.rate == 1.0
    assert result.high == 1.0 and result.low < 0.75  # 10 cases: Wilson's [0.72, 1]


def test_retry_interval_covers_the_truth_in_simulation() -> None:
    rng = np.random.default_rng(4)
    covered, runs = 0, 200
    for _ in range(runs):
        rates = rng.beta(3, 1, size=30)
        records = [
            record("m", f"c{i}", bool(rng.random() < p), repeat=r)
            for i, p in enumerate(rates)
            for r in range(5)
        ]
        result = estimate(
            attempts_of(records).frame, parse_policy("retry(m, 2)"), "s", "t", boot=400
        )
        truth = float(np.mean(1 - (1 - rates) ** 2))
        covered += result.low <= truth <= result.high
    assert covered / runs >= 0.93


def test_margin_policies_prints_estimates_and_refuses_bad_policies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli
    from tests.report.conftest import make_run

    small = repeats("small", {"a": "1100", "b": "0000", "c": "1111"})
    big = repeats("big", {"a": "1111", "b": "1110", "c": "1111"}, cost=0.01)
    folder = make_run(tmp_path / "run", small + big)
    result = run_cli(
        "policies", str(folder), "--policy", "cascade(small, big)", "--policy", "retry(small, 2)"
    )
    assert result.exit_code == 0, result.output
    assert "cascade(small, big)" in result.stdout and "retry(small, 2)" in result.stdout
    assert (
        "Temperature 0: a retry of the same prompt mostly returns the same answer" in result.stdout
    )
    bad = run_cli("policies", str(folder), "--policy", "cascade(small, huge)")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: policy 'cascade(small, huge)': no model 'huge' in this run"


def test_latency_sums_the_attempts_a_cascade_makes() -> None:
    small = [record("small", "a", False, repeat=r, latency=1.0) for r in range(3)]
    big = [record("big", "a", True, repeat=r, latency=5.0) for r in range(3)]
    result = estimate(
        attempts_of(small + big).frame, parse_policy("cascade(small*2, big)"), "s", "t"
    )
    assert result.latency_p50 == pytest.approx(1.0 + 1.0 + 5.0)  # two failed tries, then big
    assert result.calls == pytest.approx(3.0)


def test_configured_policies_reach_results_json_and_the_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import jsonschema

    from margin.report import render_report
    from margin.results.document import SCHEMA_PATH
    from tests.report.conftest import make_run

    small = repeats("small", {"a": "1100", "b": "0000", "c": "1111"})
    big = repeats("big", {"a": "1111", "b": "1110", "c": "1111"}, cost=0.01)
    folder = make_run(tmp_path / "run", small + big, settings={"policies": ["cascade(small, big)"]})
    render_report(folder)
    data = json.loads((folder / "results.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    (row,) = data["policies"]
    assert row["policy"] == "cascade(small, big)" and row["calls"] == pytest.approx(
        np.mean([1.5, 2, 1])
    )
    assert "Delivery policies" in (folder / "index.html").read_text()


def test_a_policy_that_crosses_every_task_is_named_beside_the_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from margin.report import render_report
    from tests.report.conftest import make_run

    cases = {f"c{i}": "1111" for i in range(40)}
    small = repeats("small", {**cases, "c0": "0000", "c1": "0000"}, cost=0.001)
    big = repeats("big", cases, cost=0.01)
    folder = make_run(
        tmp_path / "run",
        small + big,
        settings={"policies": ["cascade(small, big)", "retry(small, 2)"]},
    )
    render_report(folder)
    data = json.loads((folder / "results.json").read_text())
    assert data["recommendation"]["model"] == "big"  # small alone: 152/160, cases 38/40
    assert data["recommendation"]["policies"] == ["cascade(small, big)"]
    line = next(x for x in data["recommendation"]["lines"] if x.startswith("Policy "))
    assert "cascade(small, big) crosses every task" in line and "of big's cost" in line
    page = (folder / "index.html").read_text()
    chart = page[page.index("Policies and models: worst-task reliability") - 300 :]
    assert chart.count('class="marked"') >= 2  # small (cheapest) and the cascade on the frontier
