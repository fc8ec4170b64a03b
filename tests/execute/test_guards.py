"""What production's guards saw of each answer, recorded by a real run through the loopback
server, and the failures split by it in results.json."""

from __future__ import annotations

import json
from pathlib import Path

from margin.journal.records import read_journal
from margin.providers.scripts import Rule, Script
from tests.execute.conftest import loopback, run_once

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


def test_a_run_records_what_the_guards_saw_and_results_split_the_failures(
    tmp_path: Path, cache_dir: Path, models_config
) -> None:
    suite = tmp_path / "shop.yaml"
    suite.write_text(ORDERS)
    script = Script(
        rules=[
            Rule("A-1", '{"id": "A-1", "total": 10}'),
            Rule("B-2", "Sure! The order is B-2."),  # no JSON: json_schema catches it
            Rule("C-3", '{"id": "C-3", "total": 33}'),  # well-formed, wrong total: silent
            Rule("D-4", '{"id": "D-4", "total": 40}'),
        ]
    )
    with loopback(script) as url:
        result = run_once(tmp_path, suite, models_config(url))
    assert result.exit_code in (0, 1), result.output
    by_case = {r.case: r for r in read_journal(tmp_path / "run" / "journal.jsonl")}
    assert by_case["broken"].guards_passed is False
    assert by_case["broken"].guards_failed == ["json_schema", "json_fields"]
    assert by_case["wrong"].guards_passed is True and by_case["wrong"].passed is False
    assert by_case["right"].guards_passed is True and by_case["right"].passed is True
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["run"]["suites"][0]["guards"] == {"order": ["json_schema", "json_fields"]}
    task = results["tasks"][0]
    assert (task["n"], task["passes"], task["detected"], task["silent"]) == (4, 2, 1, 1)
    assert task["guarded_n"] == 4
