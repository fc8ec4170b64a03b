"""Delivery policies from recorded repeats, against closed forms and enumeration: the next try
only on a failed guard (issue 25, item 3), the oracle `on=any` only as a labelled upper bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from margin.decide.policies import estimate
from margin.decide.policy_spec import ORACLE_LABEL, UNGUARDED_LABEL, parse_policy
from margin.errors import UserError
from margin.stats import attempts_of
from tests.stats.records import record

GUARDS = {"1": True, "0": False, "s": True, "?": None}
"""Per recorded answer: `1` passes, `0` fails a guard (detected), `s` passes every guard and
fails a reference check (silent), `?` fails with its guards not recorded."""


def repeats(model: str, table: dict[str, str], cost: float = 0.001) -> list:  # type: ignore[type-arg]
    return [
        record(model, case, ch == "1", repeat=r, cost=cost).model_copy(
            update={"guards_passed": GUARDS[ch]}
        )
        for case, row in table.items()
        for r, ch in enumerate(row)
    ]


def test_parse_and_refuse() -> None:
    assert parse_policy("retry(small, 2)").steps == (("small", 2),)
    assert parse_policy("cascade(small*2, big)", {"small", "big"}).steps == (
        ("small", 2),
        ("big", 1),
    )
    oracle = parse_policy("cascade(small, big*2,  on = any)")
    assert (oracle.name, oracle.oracle) == ("cascade(small, big*2, on=any)", True)
    assert parse_policy("retry(small, 2, on=guards)") == parse_policy("retry(small, 2)")
    assert parse_policy("retry(small, 2, on=any)").name == "retry(small, 2, on=any)"
    bad_texts = ("retry(small)", "cascade(small)", "retry(small, 0)", "escalate(a, b)",
                 "retry(small, 2, on=maybe)", "cascade(small, on=any)")  # fmt: skip
    for bad in bad_texts:
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


# 20 cases, 2 recorded answers each. Per case, retry(m, 2) with the guard rule (tries drawn
# without replacement from the case's two answers):
#   7 × "11": 1.  6 × "10" (pass, detected): pass first, or detected then pass: 1.
#   6 × "1s" (pass, silent): pass first (1/2) → 1; silent first (1/2): its guards pass, so it is
#     delivered, wrong → 1/2.  1 × "s0": 0 (the silent answer is delivered either way).
#   guard rule: (7 + 6 + 6 × 1/2 + 0) / 20 = 16/20 = 80%; silent: (6 × 1/2 + 1) / 20 = 20%;
#   calls: (7 × 1 + 6 × 1.5 + 6 × 1 + 1 × 1.5) / 20 = 23.5/20 = 1.175.
# The oracle (on=any) retries every failure: 19 cases reach a pass, "s0" does not: 19/20 = 95%;
# its silent share is "s0"'s last answer, silent half the time: 0.5/20 = 2.5%;
# calls: (7 + 6 × 1.5 + 6 × 1.5 + 2) / 20 = 27/20 = 1.35.
FIXTURE = {
    **{f"a{i}": "11" for i in range(7)},
    **{f"b{i}": "10" for i in range(6)},
    **{f"c{i}": "1s" for i in range(6)},
    "d0": "s0",
}


def test_a_retry_on_guards_is_80_where_the_oracle_says_95(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from margin.report import render_report
    from tests.conftest import run_cli
    from tests.report.conftest import make_run

    frame = attempts_of(repeats("m", FIXTURE)).frame
    guarded = estimate(frame, parse_policy("retry(m, 2)"), "s", "t")
    oracle = estimate(frame, parse_policy("retry(m, 2, on=any)"), "s", "t")
    assert guarded.rate == pytest.approx(0.80) and guarded.silent == pytest.approx(0.20)
    assert guarded.calls == pytest.approx(1.175) and guarded.upper_bound is None
    assert oracle.rate == pytest.approx(0.95) and oracle.silent == pytest.approx(0.025)
    assert oracle.calls == pytest.approx(1.35) and oracle.upper_bound == ORACLE_LABEL
    assert guarded.silent_low is not None and guarded.silent_low < 0.2 < guarded.silent_high

    settings = {"policies": ["retry(m, 2)", "retry(m, 2, on=any)"]}
    folder = make_run(tmp_path / "run", repeats("m", FIXTURE), settings=settings)
    render_report(folder)
    rows = {r["policy"]: r for r in json.loads((folder / "results.json").read_text())["policies"]}
    assert rows["retry(m, 2)"]["rate"] == pytest.approx(0.80) and not rows["retry(m, 2)"]["oracle"]
    labelled = rows["retry(m, 2, on=any)"]
    assert labelled["rate"] == pytest.approx(0.95) and labelled["oracle"]
    assert labelled["upper_bound"] == "upper bound (oracle: knows the right answer)"
    page = (folder / "index.html").read_text()
    table = page[
        page.index('id="policy-table"') : page.index("</table>", page.index("policy-table"))
    ]
    assert "retry(m, 2, on=any) <b>upper bound (oracle: knows the right answer)</b>" in table
    assert "20.0% [" in table  # the guard rule's silent failures
    shown = run_cli("policies", str(folder))
    assert shown.exit_code == 0, shown.output
    assert "80.0%" in shown.stdout and "95.0%" in shown.stdout
    assert "retry(m, 2, on=any): upper bound (oracle: knows the right answer); never" in (
        " ".join(shown.stdout.split())
    )


def test_an_oracle_that_would_cross_is_never_recommended(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from margin.report import render_report
    from tests.report.conftest import make_run

    # 40 cases of (pass, silent): the oracle always reaches the pass (40/40, lower bound above
    # 0.9); a product's retry delivers the silent answer half the time (50%).
    records = repeats("m", {f"c{i}": "1s" for i in range(40)})
    settings = {"policies": ["retry(m, 2, on=any)", "retry(m, 2)"]}
    folder = make_run(tmp_path / "run", records, settings=settings)
    render_report(folder)
    data = json.loads((folder / "results.json").read_text())
    rows = {r["policy"]: r for r in data["policies"]}
    assert rows["retry(m, 2, on=any)"]["low"] >= 0.9 and rows["retry(m, 2)"]["rate"] == 0.5
    assert data["recommendation"]["policies"] == []
    line = next(x for x in data["recommendation"]["lines"] if x.startswith("Policy "))
    assert line.startswith(
        "Policy retry(m, 2, on=any) would cross every task only as an upper bound (oracle"
    )
    assert "never recommended" in line
    page = (folder / "index.html").read_text()
    start = page.index("Policies and models: worst-task reliability")
    chart = page[start : page.index("</svg>", start)]
    assert "retry(m, 2)" in chart and "on=any" not in chart  # the chart leaves upper bounds out


def _enumerated(policy: str, answers: dict[str, str]) -> tuple[float, float, float]:
    """Pass, silent and calls of one execution on one prompt, by enumerating every order in
    which each step's tries draw the model's recorded answers (without replacement)."""
    parsed = parse_policy(policy)
    orders = [list(itertools.permutations(answers[m], min(t, len(answers[m]))))
              for m, t in parsed.steps]  # fmt: skip
    passes = silent = calls = 0.0
    combos = list(itertools.product(*orders))
    for combo in combos:
        tries = [answer for step in combo for answer in step]
        goes_on = (lambda a: a != "1") if parsed.oracle else (lambda a: a == "0")
        used = next((i + 1 for i, a in enumerate(tries) if not goes_on(a)), len(tries))
        passes += tries[used - 1] == "1"
        silent += tries[used - 1] == "s"
        calls += used
    return passes / len(combos), silent / len(combos), calls / len(combos)


@pytest.mark.parametrize("policy", ["retry(a, 3)", "retry(a, 2, on=any)", "cascade(a*2, b)",
                                    "cascade(a, b*2)", "cascade(a*2, b, on=any)"])  # fmt: skip
def test_the_estimate_equals_enumeration_of_every_draw_order(policy: str) -> None:
    table = {"a": {"x": "10s0", "y": "0s", "z": "110", "w": "s000"},
             "b": {"x": "1s0", "y": "01", "z": "0s1", "w": "0000"}}  # fmt: skip
    records = [*repeats("a", table["a"]), *repeats("b", table["b"])]
    result = estimate(attempts_of(records).frame, parse_policy(policy), "s", "t")
    per = [_enumerated(policy, {m: table[m][case] for m in table}) for case in "xyzw"]
    assert result.rate == pytest.approx(np.mean([p for p, _, _ in per]))
    assert result.silent == pytest.approx(np.mean([s for _, s, _ in per]))
    assert result.calls == pytest.approx(np.mean([c for _, _, c in per]))


def test_many_repeats_approach_the_closed_form_with_replacement() -> None:
    # shares pass 0.5, silent 0.2, detected 0.3 over 1,000 repeats: retry(m, 3) delivers a pass
    # with p·(1 − d³)/(1 − d) = 0.5 × 0.973 / 0.7 = 0.695 (drawn with replacement)
    frame = attempts_of(repeats("m", {"c": "1" * 500 + "s" * 200 + "0" * 300})).frame
    result = estimate(frame, parse_policy("retry(m, 3)"), "s", "t")
    assert result.rate == pytest.approx(0.5 * (1 - 0.3**3) / 0.7, abs=1e-3)
    assert result.silent == pytest.approx(0.2 * (1 - 0.3**3) / 0.7, abs=1e-3)


def test_failures_without_recorded_guards_make_an_upper_bound() -> None:
    frame = attempts_of(repeats("m", {"a": "1?", "b": "11"})).frame
    result = estimate(frame, parse_policy("retry(m, 2)"), "s", "t")
    assert result.rate == 1.0 and result.guards_unknown == 1
    assert result.upper_bound == UNGUARDED_LABEL
