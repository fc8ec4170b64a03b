"""A validator that crashes is never scored against the model (issue 23, item 8): a schema
whose validation would recurse forever is refused at load, and a crash in a run leaves the
attempt unscored — excluded from the pass rate and counted apart, like an undecided judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.journal.records import read_journal
from margin.providers.scripts import Rule, Script
from margin.validators import CheckContext, Validator, Verdict, build_validator, register
from tests.cli.test_broken_inputs import VALID
from tests.conftest import one_error_line, run_cli
from tests.execute.conftest import loopback

SELF_REFERENCES = [
    ("ref-root", "{$ref: '#'}"),
    ("ref-cycle-in-defs", "{$ref: '#/$defs/a', $defs: {a: {$ref: '#/$defs/b'}, b: {$ref: '#/$defs/a'}}}"),
    ("all-of-root", "{type: object, allOf: [{$ref: '#'}]}"),
    ("not-root", "{not: {$ref: '#'}}"),
    ("then-root", "{if: {type: string}, then: {$ref: '#'}}"),
    ("cycle-under-a-property", "{properties: {a: {anyOf: [{$ref: '#/properties/a'}]}}}"),
    ("draft-7-definitions", "{$schema: 'http://json-schema.org/draft-07/schema#', definitions: {a: {$ref: '#/definitions/a'}}, $ref: '#/definitions/a'}"),
]  # fmt: skip


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("name", "schema"), SELF_REFERENCES, ids=[s[0] for s in SELF_REFERENCES])
def test_a_schema_that_refers_to_itself_in_place_is_refused_at_load(
    write, name: str, schema: str
) -> None:
    path = write(
        f"{name}.yaml", VALID.replace("      - max_words: 12", f"      - json_schema: {schema}")
    )
    result = run_cli("validate", str(path))
    line = one_error_line(result, f"{path}:11: ")
    assert result.stdout == ""
    assert "json_schema" in line and "refers to itself" in line, line


def test_the_same_refusal_for_contains_json() -> None:
    with pytest.raises(ValueError, match="refers to itself"):
        build_validator({"contains_json": {"$ref": "#"}})


def test_a_ref_to_nowhere_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="'#/\\$defs/missing' points nowhere in the schema"):
        build_validator({"json_schema": {"properties": {"a": {"$ref": "#/$defs/missing"}}}})


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        ({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}},
         '{"children": [{"children": []}]}'),
        ({"type": "object", "additionalProperties": {"$ref": "#"}}, '{"a": {"b": {}}}'),
        ({"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#"}}]}, '[["x"]]'),
        ({"$defs": {"unused": {"$ref": "#/$defs/unused"}}, "type": "string"}, '"x"'),
        ({"$defs": {"a": {"$anchor": "a", "type": "integer"}},
          "properties": {"x": {"$ref": "#a"}}}, '{"x": 1}'),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "$dynamicAnchor": "node",
          "type": "object", "properties": {"kids": {"items": {"$dynamicRef": "#node"}}}},
         '{"kids": [{}]}'),
    ],
)  # fmt: skip
def test_schemas_that_recurse_through_the_value_still_load(
    schema: dict[str, object], answer: str
) -> None:
    check = build_validator({"json_schema": schema})
    assert check.check(answer, CheckContext()).passed


def test_an_answer_nested_too_deep_for_a_recursive_schema_fails_with_a_reason() -> None:
    check = build_validator({"json_schema": {"type": "array", "items": {"$ref": "#"}}})
    verdict = check.check("[" * 900 + "]" * 900, CheckContext())
    assert not verdict.passed and "nested too deep to check" in verdict.reason
    assert not verdict.unscored


@register
class Fragile(Validator):
    """A plugin with a bug: it crashes on answers that say `boom`."""

    name = "fragile_for_tests"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        if "boom" in output:
            raise KeyError("a bug in the plugin")
        return self.verdict(True, "fine")


CRASHING_SUITE = """\
suite: s
target: 0.5
tasks:
  - id: t
    prompt: "Say something about {{ x }}."
    cases:
      - {id: a, vars: {x: apples}}
      - {id: b, vars: {x: bananas}}
      - {id: c, vars: {x: cherries}}
    validators:
      - max_words: 20
      - fragile_for_tests
"""


def test_a_crashing_validator_leaves_the_attempt_unscored_not_failed(
    tmp_path: Path, models_config, cache_dir
) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(CRASHING_SUITE)
    script = Script(rules=[Rule("cherries", "boom goes the cherry")], default="a calm answer")
    with loopback(script) as url:
        out = tmp_path / "run"
        result = run_cli("run", str(suite), "--models", str(models_config(url)),
                         "--out", str(out), "--repeats", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = {r.case: r for r in read_journal(out / "journal.jsonl")}
    crashed = records["c"]
    assert crashed.passed is None and crashed.partial is None and crashed.error == "Unscored"
    assert crashed.output == "boom goes the cherry"
    assert crashed.error_message is not None
    assert crashed.error_message.startswith("fragile_for_tests: validator crashed: KeyError")
    fragile = crashed.verdicts[1]
    assert fragile.unscored and "validator crashed: KeyError" in fragile.reason
    assert crashed.verdicts[0].passed and not crashed.verdicts[0].unscored
    assert records["a"].passed is True and records["b"].passed is True
    results = json.loads((out / "results.json").read_text())
    (task,) = results["tasks"]
    assert (task["n"], task["passes"], task["unscored"], task["infra_errors"]) == (2, 2, 1, 0)
    (model,) = results["models"]
    assert model["rate"] == 1.0  # the plugin's bug did not lower the model's pass rate
