"""`margin run --policy`: delivery policies executed for real through litellm's HTTP path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from margin.decide.policies import executions, measured, parse_policy
from margin.journal.records import read_journal
from margin.providers.scripts import Script
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
        return made.model_copy(update={"policy": "retry(weak, 2)", "step": index, "key": key})

    steps = [
        step("a", False, 0), step("a", True, 1),  # passed on the retry
        step("b", False, 0), step("b", False, 1),  # failed both tries
        step("c", None, 0),  # stopped by an infra error
        step("d", False, 0),  # unfinished: its second try never ran
    ]  # fmt: skip
    frame = attempts_of(steps).steps
    assert frame is not None and attempts_of(steps).frame.empty
    policy = parse_policy("retry(weak, 2)")
    done = executions(frame, [policy]).set_index("case")
    assert done.loc["a", "passed"] == 1.0 and done.loc["a", "latency_s"] == 2.0
    assert done.loc["b", "passed"] == 0.0 and done.loc["b", "calls"] == 2
    assert done.loc["c", "judged"] == False and done.loc["c", "error"] == "InfraError"  # noqa: E712
    assert bool(done.loc["d", "incomplete"]) and not bool(done.loc["d", "judged"])
    row = measured(frame, [policy], {("s", "t"): 0.9}).iloc[0]
    assert (row["n"], row["rate"], row["infra_errors"], row["incomplete"]) == (2, 0.5, 1, 1)


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
