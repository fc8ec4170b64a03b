"""The in-process fake provider `fake/<name>`, for margin's tests and users' own."""

from __future__ import annotations

import json

from margin.journal.records import read_journal
from margin.providers.fake import Rule, Script, register_script
from tests.conftest import SUITES, run_cli


def test_scripted_answers_faults_and_usage_through_litellm(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    register_script("adder", Script(rules=[Rule(r"123.+456", "579")], default="I don't know"))
    register_script("flaky", Script(default="579", fault_rate=1.0, faults=("503",)))
    config = tmp_path / "fake.yaml"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {"name": "adder", "model": "fake/adder"},
                    {"name": "flaky", "model": "fake/flaky"},
                ],
                "run": {"retries": 1, "backoff_s": 0.01, "paraphrases": False, "noise": False},
            }
        )
    )
    result = run_cli(
        "run",
        str(SUITES / "arithmetic.yaml"),
        "--models",
        str(config),
        "--config",
        str(config),
        "--repeats",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output
    records = {(r.model, r.case): r for r in read_journal(tmp_path / "run" / "journal.jsonl")}
    assert records[("adder", "s1")].passed is True
    assert records[("adder", "s1")].output_tokens >= 1
    assert records[("adder", "s2")].passed is False
    assert "no number in the output" in records[("adder", "s2")].verdicts[0].reason
    assert {r.error for (m, _), r in records.items() if m == "flaky"} == {"ServerError"}
    assert "flaky: 0/0 (no judged attempts) over all tasks" in result.stdout
    assert "10 infra errors" in result.stdout


def test_an_unknown_script_is_recorded_then_the_model_halts(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "fake.yaml"
    config.write_text(json.dumps({"models": [{"name": "ghost", "model": "fake/ghost"}]}))
    result = run_cli(
        "run",
        str(SUITES / "arithmetic.yaml"),
        "--models",
        str(config),
        "--repeats",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 1, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert {r.error for r in records} == {"ModelNotFound"}
    # Stopped after its first refusals (and the calls already in flight): not 60 rows.
    assert 3 <= len(records) <= 3 + 2 * 4
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: model ghost stopped")
