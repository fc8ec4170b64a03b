"""A task's `guards:`: checked at load like every suite field, and in the suite's JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from margin.config import RunSettings
from margin.journal.rundir import run_identity
from margin.suite.load import load_suite
from tests.conftest import run_cli

SUITE = """\
suite: routing-guards
target: 0.9
tasks:
  - id: route
    prompt: "Route {{ text }}"
    cases:
      - id: c1
        vars: {text: my card was charged twice}
        expect: {queue: billing}
    validators:
      - max_words: 3
      - choice: {labels: [billing, shipping], from_expect: queue}
      - regex: "^[a-z]+$"
"""


def write(tmp_path: Path, guards: str | None) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE + (f"    guards:\n{guards}" if guards is not None else ""))
    return path


@pytest.mark.parametrize(
    ("guards", "message"),
    [
        (
            "      - max_words\n      - choice\n",
            "guards[1]: guard 'choice' reads the case's expect or a reference, which production"
            " answers lack; only its part that needs no expect is a guard",
        ),
        ("      - regex#2\n", "guards[0]: guard 'regex#2' is not a validator of this task"),
    ],
    ids=["reads-expect", "not-in-task"],
)
def test_a_guard_that_reads_expect_or_is_not_there_is_refused(
    tmp_path: Path, guards: str, message: str
) -> None:
    path = write(tmp_path, guards)
    result = run_cli("validate", str(path))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    line = 14 + guards.count("\n")  # the offending entry is the list's last line
    assert lines[0].startswith(f"error: {path}:{line}: tasks[0].{message}"), lines[0]


def test_named_guards_load_and_replace_the_derived_ones(tmp_path: Path) -> None:
    derived = load_suite(write(tmp_path, None)).tasks[0]
    assert [(g.label, g.whole) for g in derived.production_guards()] == [
        ("max_words", True),
        ("choice", False),
        ("regex", True),
    ]
    result = run_cli("validate", str(write(tmp_path, "      - regex\n")))
    assert result.exit_code == 0, result.stderr
    named = load_suite(tmp_path / "suite.yaml").tasks[0]
    assert named.guards == ["regex"]
    assert [(g.label, g.whole) for g in named.production_guards()] == [("regex", True)]
    none = load_suite(write(tmp_path, "      []\n")).tasks[0]
    assert none.production_guards() == ()


def test_guards_leave_the_run_identity_alone(tmp_path: Path) -> None:
    """Guards judge attempts, they do not shape them: naming them starts no new run."""
    settings = RunSettings()
    plain = run_identity([load_suite(write(tmp_path, None))], [], settings)
    named = run_identity([load_suite(write(tmp_path, "      - regex\n"))], [], settings)
    assert plain == named


def test_the_suite_schema_has_guards(tmp_path: Path) -> None:
    result = run_cli("schema", "--kind", "suite")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    field = schema["$defs"]["Task"]["properties"]["guards"]
    assert "production" in field["description"]
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(write(tmp_path, "      - max_words\n").read_text())
    assert not list(validator.iter_errors(good))
    good["tasks"][0]["guards"] = "max_words"
    assert list(validator.iter_errors(good))
