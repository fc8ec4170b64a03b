"""A case's own validators (`cases[].validators`): checked at load, judged after the task's,
counted as that case's in partial credit, per-validator statistics and production guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.config import RunSettings
from margin.errors import SuiteError
from margin.journal.rundir import run_identity
from margin.suite.load import load_suite

SUITE = """\
suite: replies
target: 0.9
tasks:
  - id: reply
    prompt: "Answer {{ q }}"
    cases:
      - {id: plain, vars: {q: alpha}}
      - id: polite
        vars: {q: beta}
        validators: [{contains_all: [thanks]}]
      - id: capped
        vars: {q: gamma}
        expect: {word: gamma}
        validators:
          - max_words: 3
          - contains_all: {from_expect: word}
    validators:
      - max_words: 20
"""


def write(tmp_path: Path, text: str, name: str = "replies.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_case_validators_follow_the_tasks_with_labels_in_their_record(tmp_path: Path) -> None:
    task = load_suite(write(tmp_path, SUITE)).tasks[0]
    plain, polite, capped = task.cases
    assert [v.name for v in task.checks_for(plain)] == ["max_words"]
    assert [v.name for v in task.checks_for(polite)] == ["max_words", "contains_all"]
    assert [v.name for v in task.checks_for(capped)] == ["max_words", "max_words", "contains_all"]
    # A case validator that needs no expect is a guard for that case, labelled as in its verdicts.
    assert [g.label for g in task.guards_for(plain)] == ["max_words"]
    assert [g.label for g in task.guards_for(polite)] == ["max_words", "contains_all"]
    assert [g.label for g in task.guards_for(capped)] == ["max_words", "max_words#2"]


def test_a_case_validator_is_checked_against_its_own_case(tmp_path: Path) -> None:
    broken = SUITE.replace("        expect: {word: gamma}\n", "")
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, broken))
    assert "case 'capped'" in str(caught.value) and "word" in str(caught.value)
    unknown = SUITE.replace("[{contains_all: [thanks]}]", "[{no_such_check: 1}]")
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, unknown))
    assert "tasks[0].cases[1].validators[0]" in str(caught.value)


def test_a_task_may_leave_its_validators_to_every_case(tmp_path: Path) -> None:
    only_cases = SUITE.replace("    validators:\n      - max_words: 20\n", "")
    with pytest.raises(SuiteError) as caught:  # `plain` has no validator at all
        load_suite(write(tmp_path, only_cases))
    assert "case 'plain' has no validators" in str(caught.value)
    fixed = only_cases.replace("{id: plain, vars: {q: alpha}}", "{id: plain, vars: {q: alpha},"
                               " validators: [max_words: 5]}")  # fmt: skip
    task = load_suite(write(tmp_path, fixed)).tasks[0]
    assert [v.name for v in task.checks_for(task.cases[0])] == ["max_words"]


def test_only_suites_with_case_validators_change_their_run_identity(tmp_path: Path) -> None:
    plain = SUITE.replace("        validators: [{contains_all: [thanks]}]\n", "")
    plain = plain.replace(
        "        validators:\n          - max_words: 3\n          - contains_all: {from_expect: word}\n",
        "",
    )
    suite = load_suite(write(tmp_path, plain))
    dumped = suite.model_dump(mode="json")
    assert all("validators" not in case for case in dumped["tasks"][0]["cases"])
    settings = RunSettings()
    with_own = run_identity([load_suite(write(tmp_path, SUITE))], [], settings)
    assert run_identity([suite], [], settings) != with_own
