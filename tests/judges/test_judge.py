"""The `judge` validator through litellm's HTTP path: unscored never counts, calls are cached
and retried like a model's, the judge's κ against human labels decides whether to trust it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.journal.records import read_journal
from margin.judges.check import agreement_table
from margin.providers.scripts import Rule, Script
from margin.stats.intervals import rate_interval
from margin.stats.numbers import rate_with_interval
from margin.validators.base import JudgeTrace
from margin.validators.judge import combine, combine_pairs, parse_judgement
from tests.conftest import run_cli
from tests.execute.conftest import loopback, server_stats

KEY = "sk-loop-test"  # LOOP_KEY in the environment (tests/execute/conftest.py)

SUITE = """\
suite: desk
target: 0.2
tasks:
  - id: title
    prompt: "Ticket title for: {{ complaint }}"
    cases:
      - {id: a, vars: {complaint: "order 1 never came"}}
      - {id: b, vars: {complaint: "order 2 is broken"}}
      - {id: c, vars: {complaint: "order 3 charged twice"}}
    validators:
      - max_words: 12
      - judge:
          rubric: "Complaint: {{ complaint }}\\nTitle: {{ output }}\\nDoes the title keep the request?"
          labels: labels.yaml
"""


def setup(tmp_path: Path, model_url: str, judge_url: str, **run: object) -> tuple[Path, Path]:
    suite = tmp_path / "desk.yaml"
    suite.write_text(SUITE)

    def spec(name: str, url: str) -> dict[str, object]:
        return {
            "name": name, "model": f"openai/fake-{name}", "api_base": url,
            "api_key": "${LOOP_KEY}", "timeout": 10,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
        }  # fmt: skip

    settings = {
        "noise": False,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "judge": {"model": "judge"},
    }
    settings.update(run)
    config = tmp_path / "models.yaml"
    models = [spec("m", model_url), spec("judge", judge_url)]
    config.write_text(json.dumps({"models": models, "run": settings}))
    return suite, config


def run(suite: Path, config: Path, out: Path, *extra: str) -> None:
    result = run_cli(
        "run", str(suite), "--models", str(config), "--only", "m", "--repeats", "1",
        "--out", str(out), *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def verdict(answer: str) -> str:
    return json.dumps({"verdict": answer, "score": 0.8, "reason": "<script>alert(1)</script>"})


def test_a_judge_that_answers_garbage_leaves_the_attempt_unscored(tmp_path, cache_dir) -> None:
    with (
        loopback(Script(default="Order refund request")) as model_url,
        loopback(Script(default="Looks fine to me!")) as judge_url,
    ):
        suite, config = setup(tmp_path, model_url, judge_url)
        run(suite, config, tmp_path / "run")
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == 3 and {r.error for r in records} == {"Unscored"}
    assert all(r.passed is None and r.output == "Order refund request" for r in records)
    judge = records[0].verdicts[1]
    assert judge.unscored and judge.judge is not None
    assert judge.judge.answers == ["Looks fine to me!"] and judge.judge.model == "judge"
    assert "Title: Order refund request" in judge.judge.prompt
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (task,) = results["tasks"]
    assert (task["n"], task["unscored"], task["infra_errors"]) == (0, 3, 0)  # never a verdict
    assert task["verdict"] == "undecided"
    (judge_row,) = results["judges"]
    assert (judge_row["scored"], judge_row["unscored"], judge_row["trusted"]) == (0, 3, False)
    assert "not checked" in judge_row["status"]


def test_judge_calls_retry_cache_and_never_carry_a_secret(tmp_path, cache_dir) -> None:
    judge_script = Script(
        rules=[Rule("Title: Order", verdict("fail"))], default="?", fault_rate=0.4,
        faults=("500",), seed=5,
    )  # fmt: skip
    with (
        loopback(Script(default="Order refund request")) as model_url,
        loopback(judge_script) as judge_url,
    ):
        suite, config = setup(
            tmp_path, model_url, judge_url, judge={"model": "judge", "repeats": 3}
        )
        run(suite, config, tmp_path / "run")
        first = server_stats(judge_url)
        run(suite, config, tmp_path / "again")  # same answers: every judge call is a cache hit
        second = server_stats(judge_url)
    assert first["ok"] == 9 and first["requests"] > 9  # 3 attempts × 3 judge repeats, retried
    assert second["requests"] == first["requests"]
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert all(r.passed is False and r.error is None for r in records)  # the judge failed them
    trace = records[0].verdicts[1].judge
    assert trace is not None and len(trace.answers) == 3 and trace.agreement == 1.0
    assert records[0].judge_cost_usd and records[0].judge_cost_usd > 0
    assert records[0].cost_usd and records[0].judge_cost_usd != records[0].cost_usd
    again = list(read_journal(tmp_path / "again" / "journal.jsonl"))
    assert all(r.verdicts[1].judge.cache_hits == 3 for r in again)  # type: ignore[union-attr]
    for folder in ("run", "again"):
        for name in ("journal.jsonl", "results.json", "index.html", "run.json"):
            assert KEY not in (tmp_path / folder / name).read_text()
    html = (tmp_path / "run" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (task,) = results["tasks"]
    assert task["judge_cost_per_1000"] > 0 and task["cost_per_1000"] > 0


def test_judge_check_measures_kappa_and_decides_trust(tmp_path, cache_dir) -> None:
    # The fake judge passes titles with GOOD; people passed a, b, c, d, e and failed the rest.
    people = {"a": ("GOOD", "pass"), "b": ("GOOD", "pass"), "c": ("GOOD", "pass"),
              "d": ("GOOD", "pass"), "e": ("BAD", "pass"), "f": ("GOOD", "fail"),
              "g": ("GOOD", "fail"), "h": ("BAD", "fail"), "i": ("BAD", "fail"),
              "j": ("BAD", "fail")}  # fmt: skip
    examples = [
        {"id": k, "vars": {"complaint": f"order {k}"}, "output": f"{word} title", "human": human}
        for k, (word, human) in people.items()
    ]
    script = Script(
        rules=[Rule("Title: GOOD", verdict("pass")), Rule("Title: BAD", verdict("fail"))]
    )
    with (
        loopback(Script(default="GOOD title")) as model_url,
        loopback(script) as judge_url,
    ):
        suite, config = setup(tmp_path, model_url, judge_url)
        labels = tmp_path / "labels.yaml"
        labels.write_text(json.dumps({"suite": "desk", "task": "title", "examples": examples}))
        result = run_cli(
            "judge-check", str(suite), "--labels", str(labels), "--models", str(config)
        )
        assert result.exit_code == 0, result.output
        check = json.loads((tmp_path / "labels.check.json").read_text())
        # By hand: agreement 7/10; p(human pass) 0.5, p(judge pass) 0.6; chance agreement
        # 0.5·0.6 + 0.5·0.4 = 0.5; κ = (0.7 − 0.5) / (1 − 0.5) = 0.4.
        assert check["matrix"] == [[4, 1], [2, 3]]
        assert check["agreement"] == pytest.approx(0.7) and check["kappa"] == pytest.approx(0.4)
        assert check["false_pass_rate"] == pytest.approx(2 / 5)
        assert check["false_fail_rate"] == pytest.approx(1 / 5)
        assert check["kappa_low"] < 0.4 < check["kappa_high"]
        assert "not trusted" in result.output
        run(suite, config, tmp_path / "run")
        gate = run_cli("gate", str(tmp_path / "run"))
        run(suite, config, tmp_path / "lenient", "--config", str(lenient(tmp_path)))
        lenient_gate = run_cli("gate", str(tmp_path / "lenient"))
    (row,) = json.loads((tmp_path / "run" / "results.json").read_text())["judges"]
    assert row["checked"] and row["kappa"] == pytest.approx(0.4) and not row["trusted"]
    assert gate.exit_code == 3 and "not trusted" in gate.output  # it cannot decide a gate
    html = (tmp_path / "run" / "index.html").read_text()
    assert "is not trusted" in html and "0.40 [" in html
    # agreement, false pass and false fail with their counts and Clopper–Pearson intervals
    assert row["matrix"] == [[4, 1], [2, 3]]
    for count, n in [(7, 10), (2, 5), (1, 5)]:
        low, high = rate_interval(count, n)
        assert rate_with_interval(count, n, float(low), float(high)) in html
    assert lenient_gate.exit_code == 0, lenient_gate.output  # κ 0.4 ≥ 0.3: it decides


def lenient(tmp_path: Path) -> Path:
    path = tmp_path / "lenient.yaml"
    path.write_text(json.dumps({"run": {"judge": {"model": "judge", "min_kappa": 0.3}}}))
    return path


def test_parse_is_strict_and_ties_are_unscored() -> None:
    ok = '{"verdict": "pass", "score": 1, "reason": "keeps it"}'
    assert parse_judgement(ok) is not None
    assert parse_judgement(f"```json\n{ok}\n```") is not None
    for bad in (
        "pass", '{"verdict": "PASS", "score": 1, "reason": "x"}',
        '{"verdict": "pass", "score": 1.5, "reason": "x"}',
        '{"verdict": "pass", "score": 1, "reason": "x", "extra": 1}',
        '{"verdict": "pass", "reason": "x"}', f"Sure! {ok}", "[]",
    ):  # fmt: skip
        assert parse_judgement(bad) is None, bad
    trace = JudgeTrace(model="j", prompt="p", answers=[])
    fail = '{"verdict": "fail", "score": 0, "reason": "lost it"}'
    assert combine("judge", [ok, fail], trace).unscored  # a tie decides nothing
    two_of_three = combine("judge", [ok, fail, ok], trace)
    assert two_of_three.passed and not two_of_three.unscored
    assert two_of_three.judge is not None and two_of_three.judge.agreement == pytest.approx(2 / 3)
    assert combine("judge", [ok, None, None], trace).unscored  # most calls failed
    assert combine("judge", [None], trace).unscored


def test_kappa_matches_a_hand_computation_and_statsmodels() -> None:
    table = agreement_table(
        human=[True] * 20 + [False] * 20,
        judge=[True] * 15 + [False] * 5 + [True] * 4 + [False] * 16,
    )
    # po = (15 + 16) / 40; pe = 0.5 · 19/40 + 0.5 · 21/40 = 0.5; κ = (0.775 − 0.5) / 0.5
    assert table["kappa"] == pytest.approx(0.55)
    assert table["matrix"] == [[15, 5], [4, 16]]


PAIRWISE = """\
suite: desk
target: 0.2
tasks:
  - id: title
    prompt: "Ticket title for: {{ complaint }}"
    cases:
      - {id: a, vars: {complaint: "order 1 never came"}, expect: {title: "REF order 1 missing"}}
    validators:
      - judge:
          rubric: "Which title is better? First: {{ first }} Second: {{ second }}"
          reference: "{{ expect.title }}"
          pass_on: better
"""


def test_a_pairwise_rubric_asks_both_orders(tmp_path, cache_dir) -> None:
    output_first = json.dumps({"better": "first", "reason": "keeps more"})
    ref_first = json.dumps({"better": "second", "reason": "keeps more"})
    script = Script(rules=[Rule("First: Order", output_first), Rule("First: REF", ref_first)])
    with (
        loopback(Script(default="Order 1 never arrived")) as model_url,
        loopback(script) as judge_url,
    ):
        _, config = setup(tmp_path, model_url, judge_url)
        suite = tmp_path / "pairwise.yaml"
        suite.write_text(PAIRWISE)
        run(suite, config, tmp_path / "run")
        assert server_stats(judge_url)["ok"] == 2  # one repeat, both orders
    (record,) = read_journal(tmp_path / "run" / "journal.jsonl")
    (judged,) = record.verdicts
    assert judged.passed and judged.score == 1.0 and judged.judge is not None
    assert "First: Order 1 never arrived Second: REF" in judged.judge.prompt
    assert (
        judged.judge.swapped_prompt and "First: REF order 1 missing" in judged.judge.swapped_prompt
    )


def test_order_disagreement_is_a_tie() -> None:
    trace = JudgeTrace(model="j", prompt="p", answers=[])

    def pair(a: str, b: str) -> list[str | None]:
        return [json.dumps({"better": a, "reason": "r"}), json.dumps({"better": b, "reason": "r"})]

    both = combine_pairs("judge", pair("first", "second"), trace, "better")
    assert both.passed and both.score == 1.0
    flip = pair("first", "first")  # prefers whatever comes first: position bias, a tie
    assert combine_pairs("judge", flip, trace, "tie").passed
    assert not combine_pairs("judge", flip, trace, "better").passed
    assert combine_pairs("judge", flip, trace).score == 0.5
    worse = combine_pairs("judge", pair("second", "first"), trace)
    assert not worse.passed and not worse.unscored
    assert combine_pairs("judge", [pair("first", "second")[0], "garbage"], trace).unscored


def test_a_rubric_naming_an_unknown_variable_is_refused_at_load(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace("{{ complaint }}\\nTitle", "{{ complant }}\\nTitle"))
    result = run_cli("validate", str(bad))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "complant" in result.output and "bad.yaml:" in result.output
