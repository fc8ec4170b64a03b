"""`margin run --policy`: delivery policies executed for real through litellm's HTTP path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from margin.decide.policy_runs import executions, measured
from margin.decide.policy_spec import ORACLE_LABEL, parse_policy
from margin.journal.records import read_journal
from margin.providers.scripts import Rule, Script
from margin.stats import attempts_of
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, fast_settings, loopback, server_stats
from tests.stats.records import record

ROUTING = str(SUITES / "routing.yaml")
WEAK_RULES = ROUTING_RULES[:2]  # knows billing and shipping: 4 of the 10 cases, both wordings


def two_models(tmp_path: Path, weak: str, strong: str) -> Path:
    def spec(name: str, url: str, price: float) -> dict[str, object]:
        return {
            "name": name,
            "model": f"openai/fake-{name}",
            "api_base": url,
            "api_key": "${LOOP_KEY}",
            "timeout": 10,
            "price": {"input_per_mtok": price, "output_per_mtok": price},
        }

    path = tmp_path / "two.yaml"
    models = [spec("weak", weak, 1.0), spec("strong", strong, 10.0)]
    path.write_text(json.dumps({"models": models, "run": {"noise": False}}))
    return path


def run_policies(tmp_path: Path, models: Path, *policies: str, cache: bool = True) -> None:
    flags = [part for policy in policies for part in ("--policy", policy)]
    flags += [] if cache else ["--no-cache"]
    result = run_cli(
        "run", ROUTING, "--models", str(models), "--repeats", "2",
        "--config", str(fast_settings(tmp_path)), "--out", str(tmp_path / "run"), *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_cascade_and_a_retry_run_step_by_step(tmp_path, cache_dir) -> None:
    with (
        loopback(Script(rules=WEAK_RULES, default="no idea")) as weak_url,
        loopback(Script(rules=ROUTING_RULES)) as strong_url,
    ):
        models = two_models(tmp_path, weak_url, strong_url)
        run_policies(tmp_path, models, "cascade(weak,strong)", "retry(weak, 3)")
        weak, strong = server_stats(weak_url), server_stats(strong_url)
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    steps = Counter((r.policy, r.step, r.model) for r in records if r.policy)
    # 10 cases × 2 wordings × 2 executions = 40; the weak model passes 16 (4 cases × 2 × 2)
    assert steps == {
        ("cascade(weak, strong)", 0, "weak"): 40,
        ("cascade(weak, strong)", 1, "strong"): 24,
        ("retry(weak, 3)", 0, "weak"): 40,
        ("retry(weak, 3)", 1, "weak"): 24,
        ("retry(weak, 3)", 2, "weak"): 24,
    }
    assert weak["ok"] == 40 + 40 + 40 + 24 + 24  # bare attempts, the cascade's, the retry's
    assert strong["ok"] == 40 + 24
    step = next(r for r in records if r.policy == "cascade(weak, strong)" and r.step == 1)
    assert step.key.endswith("|cascade(weak, strong)#s1") and step.repeat in (0, 1)
    assert all(r.schema_version == 4 for r in records)

    results = json.loads((tmp_path / "run" / "results.json").read_text())
    bare = {m["model"]: (m["passes"], m["n"]) for m in results["models"]}
    assert bare == {"weak": (16, 40), "strong": (40, 40)}  # policy steps never count here
    ran = {r["policy"]: r for r in results["policy_runs"]}
    assert ran["cascade(weak, strong)"]["rate"] == 1.0
    assert ran["cascade(weak, strong)"]["n"] == 40
    assert ran["cascade(weak, strong)"]["calls"] == pytest.approx(64 / 40)
    assert ran["cascade(weak, strong)"]["low"] < 0.95  # 40 executions of 10 cases: not a point
    assert ran["retry(weak, 3)"]["rate"] == pytest.approx(0.4)
    assert ran["retry(weak, 3)"]["calls"] == pytest.approx((40 + 48) / 40)
    assert ran["retry(weak, 3)"]["verdict"] == "falls short"
    # The answers are deterministic, so the estimate from the bare repeats is exact here.
    estimated = {r["policy"]: r for r in results["policies"]}
    for name, row in ran.items():
        assert estimated[name]["rate"] == pytest.approx(row["rate"])
        assert estimated[name]["calls"] == pytest.approx(row["calls"])
    # cost: weak steps at $1/Mtok and strong at $10/Mtok, summed per execution
    spent = sum(r.cost_usd or 0 for r in records if r.policy == "cascade(weak, strong)")
    assert ran["cascade(weak, strong)"]["cost_per_1000"] == pytest.approx(spent / 40 * 1000)
    html = (tmp_path / "run" / "index.html").read_text()
    assert "run for real" in html


def test_a_killed_policy_run_resumes_exactly(tmp_path, cache_dir) -> None:
    journal = tmp_path / "run" / "journal.jsonl"
    with (
        loopback(Script(rules=WEAK_RULES, default="no idea")) as weak_url,
        loopback(Script(rules=ROUTING_RULES)) as strong_url,
    ):
        models = two_models(tmp_path, weak_url, strong_url)
        run_policies(tmp_path, models, "cascade(weak, strong)", cache=False)
        whole = sorted(r.key for r in read_journal(journal))
        # as if killed after the first stage: the strong model's steps are lost
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text("".join(line for line in lines if '"step":1' not in line))
        before = server_stats(strong_url)["ok"]
        run_policies(tmp_path, models, "cascade(weak, strong)", cache=False)
        assert server_stats(strong_url)["ok"] - before == 24  # only the lost steps, once each
    assert sorted(r.key for r in read_journal(journal)) == whole


def test_an_unknown_model_in_a_policy_is_refused_before_any_call(tmp_path, cache_dir) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = two_models(tmp_path, url, url)
        result = run_cli(
            "run", ROUTING, "--models", str(models), "--out", str(tmp_path / "run"),
            "--policy", "cascade(weak, huge)",
        )  # fmt: skip
        assert server_stats(url).get("requests", 0) == 0
    assert result.exit_code == 2
    assert "no model 'huge' in this run" in result.output and "Traceback" not in result.output


def test_an_infra_error_stops_an_execution_and_is_never_a_failure() -> None:
    def step(case: str, passed: bool | None, index: int, repeat: int = 0):  # type: ignore[no-untyped-def]
        made = record("weak", case, passed, repeat=repeat)
        key = f"{made.key}|retry(weak, 2)#s{index}"
        update = {"policy": "retry(weak, 2)", "step": index, "key": key}
        return made.model_copy(update={**update, "guards_passed": passed})  # failures detected

    steps = [
        step("a", False, 0), step("a", True, 1),  # passed on the retry
        step("b", False, 0), step("b", False, 1),  # failed both tries
        step("c", None, 0),  # stopped by an infra error
        step("d", False, 0),  # unfinished: its second try never ran
        # its guards passed (a silent failure): delivered, the try after it (left by a run
        # under the oracle rule) is not part of the execution
        step("e", False, 0).model_copy(update={"guards_passed": True}), step("e", True, 1),
    ]  # fmt: skip
    frame = attempts_of(steps).steps
    assert frame is not None and attempts_of(steps).frame.empty
    policy = parse_policy("retry(weak, 2)")
    done = executions(frame, [policy]).set_index("case")
    assert done.loc["a", "passed"] == 1.0 and done.loc["a", "latency_s"] == 2.0
    assert done.loc["b", "passed"] == 0.0 and done.loc["b", "calls"] == 2
    assert done.loc["c", "judged"] == False and done.loc["c", "error"] == "InfraError"  # noqa: E712
    assert bool(done.loc["d", "incomplete"]) and not bool(done.loc["d", "judged"])
    assert (done.loc["e", "passed"], done.loc["e", "guarded"], done.loc["e", "calls"]) == (0, 1, 1)
    row = measured(frame, [policy], {("s", "t"): 0.9}).iloc[0]
    assert (row["n"], row["passes"], row["infra_errors"], row["incomplete"]) == (3, 1, 1, 1)
    assert (row["silent"], row["guarded_n"]) == (1, 3)


def test_margin_policies_prints_the_run_beside_the_estimate(tmp_path, cache_dir) -> None:
    with (
        loopback(Script(rules=WEAK_RULES, default="no idea")) as weak_url,
        loopback(Script(rules=ROUTING_RULES)) as strong_url,
    ):
        run_policies(tmp_path, two_models(tmp_path, weak_url, strong_url), "retry(weak, 2)")
    result = run_cli("policies", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "run for real" in result.output
    assert "16/40" in result.output and "falls short" in result.output


ORDERS = """\
suite: shop
target: 0.9
tasks:
  - id: order
    prompt: "Return the order of this e-mail as JSON: {{ email }}"
    cases:
      - {id: right, vars: {email: "order A-1 total 10"}, expect: {fields: {id: "A-1", total: 10}}}
      - {id: broken, vars: {email: "order B-2 total 20"}, expect: {fields: {id: "B-2", total: 20}}}
      - {id: wrong, vars: {email: "order C-3 total 30"}, expect: {fields: {id: "C-3", total: 30}}}
      - {id: also, vars: {email: "order D-4 total 40"}, expect: {fields: {id: "D-4", total: 40}}}
    validators:
      - json_schema: {type: object, required: [id, total]}
      - json_fields: {from_expect: fields}
"""
RIGHT = [
    Rule("A-1", '{"id": "A-1", "total": 10}'),
    Rule("B-2", '{"id": "B-2", "total": 20}'),
    Rule("C-3", '{"id": "C-3", "total": 30}'),
    Rule("D-4", '{"id": "D-4", "total": 40}'),
]
WEAK_ORDERS = [
    RIGHT[0],
    Rule("B-2", "Sure! The order is B-2."),  # schema-broken: json_schema catches it
    Rule("C-3", '{"id": "C-3", "total": 33}'),  # parses, wrong total: every guard passes
    RIGHT[3],
]


def test_policies_run_for_real_go_on_only_when_a_guard_fails(tmp_path, cache_dir) -> None:
    suite = tmp_path / "shop.yaml"
    suite.write_text(ORDERS)
    policies = ["cascade(weak, strong)", "retry(weak, 2)", "cascade(weak, strong, on=any)"]
    with (
        loopback(Script(rules=WEAK_ORDERS)) as weak_url,
        loopback(Script(rules=RIGHT)) as strong_url,
    ):
        result = run_cli(
            "run", str(suite), "--models", str(two_models(tmp_path, weak_url, strong_url)),
            "--repeats", "2", "--config", str(fast_settings(tmp_path)),
            "--out", str(tmp_path / "run"), *[x for p in policies for x in ("--policy", p)],
        )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    tries: dict[tuple[str, str, int], list[str]] = {}
    for r in sorted((r for r in records if r.policy), key=lambda r: r.step or 0):
        tries.setdefault((str(r.policy), r.case, r.repeat), []).append(r.model)
    expected = {
        # broken answer: a guard fails, so the cascade escalates and the retry tries again;
        # wrong answer: every guard passes, so it is delivered (only the oracle goes on)
        "cascade(weak, strong)": {"right": ["weak"], "broken": ["weak", "strong"],
                                  "wrong": ["weak"], "also": ["weak"]},
        "retry(weak, 2)": {"right": ["weak"], "broken": ["weak", "weak"], "wrong": ["weak"],
                           "also": ["weak"]},
        "cascade(weak, strong, on=any)": {"right": ["weak"], "broken": ["weak", "strong"],
                                          "wrong": ["weak", "strong"], "also": ["weak"]},
    }  # fmt: skip
    assert tries == {
        (policy, case, execution): steps
        for policy, cases in expected.items()
        for case, steps in cases.items()
        for execution in (0, 1)
    }
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    ran = {r["policy"]: r for r in results["policy_runs"]}
    estimated = {r["policy"]: r for r in results["policies"]}
    # cascade: right, broken (via strong) and also pass, wrong is delivered silently: 6/8
    cascade = ran["cascade(weak, strong)"]
    assert (cascade["passes"], cascade["n"], cascade["silent"]) == (6, 8, 2)
    assert cascade["calls"] == pytest.approx(10 / 8) and cascade["upper_bound"] is None
    assert ran["retry(weak, 2)"]["passes"] == 4 and ran["retry(weak, 2)"]["silent"] == 2
    oracle = ran["cascade(weak, strong, on=any)"]
    assert oracle["passes"] == 8 and oracle["upper_bound"] == ORACLE_LABEL
    for name, row in ran.items():  # the answers are deterministic: the estimate is exact
        guess = estimated[name]
        assert guess["low"] <= row["rate"] <= guess["high"]
        assert guess["rate"] == pytest.approx(row["rate"])
        assert guess["silent"] == pytest.approx(row["silent"] / row["guarded_n"])
        assert guess["calls"] == pytest.approx(row["calls"])
