"""A real run of a suite with case validators through the loopback server: per-validator rows
with each case validator's own n, partial credit and guards counted as that case's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.journal.records import read_journal
from margin.providers.scripts import Rule, Script
from tests.execute.conftest import loopback, run_once
from tests.suite.test_case_validators import SUITE, write


def test_a_run_counts_case_validators_as_their_cases(
    tmp_path: Path, cache_dir: Path, models_config
) -> None:
    script = Script(
        rules=[
            Rule("alpha", "ok alpha"),
            Rule("beta", "no"),  # lacks "thanks": its case's own validator fails
            Rule("gamma", "gamma is a long answer"),  # 5 words: over its case's cap of 3
        ]
    )
    suite = write(tmp_path, SUITE)
    with loopback(script) as url:
        result = run_once(tmp_path, suite, models_config(url))
    assert result.exit_code in (0, 1), result.output
    by_case = {r.case: r for r in read_journal(tmp_path / "run" / "journal.jsonl")}
    assert [v.validator for v in by_case["capped"].verdicts] == [
        "max_words",
        "max_words",
        "contains_all",
    ]
    # Partial credit by hand: 1/1, 1/2, 2/3.
    assert by_case["plain"].partial == 1.0
    assert by_case["polite"].partial == 0.5
    assert by_case["capped"].partial == pytest.approx(2 / 3)
    assert (by_case["polite"].guards_passed, by_case["polite"].guards_failed) == (
        False,
        ["contains_all"],
    )
    assert (by_case["capped"].guards_passed, by_case["capped"].guards_failed) == (
        False,
        ["max_words#2"],
    )
    assert by_case["plain"].guards_passed is True
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = {r["validator"]: (r["n"], r["passes"]) for r in results["validators"]}
    # n counts the attempts of the cases that have the validator: 3, 2 and 1.
    assert rows == {"max_words": (3, 3), "contains_all": (2, 1), "max_words#2": (1, 0)}
