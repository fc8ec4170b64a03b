"""results.json lists every production guard of a task: its own, then those its cases add."""

from __future__ import annotations

from pathlib import Path

from margin.results.build import _task_facts
from margin.suite.load import load_suite

SUITE = """\
suite: s
target: 0.9
tasks:
  - id: t
    prompt: "Title this ticket: {{ text }}"
    cases:
      - {id: a, vars: {text: "refund please"}}
      - id: b
        vars: {text: "my parcel is late"}
        validators: [max_words: 3, {regex: "(?i)parcel"}]
      - id: c
        vars: {text: "the parcel never came"}
        validators: [max_words: 3]
    validators:
      - max_words: 12
"""


def test_the_guards_of_a_tasks_cases_are_listed_after_its_own(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE, encoding="utf-8")
    _, guards = _task_facts(load_suite(path))
    assert guards == {"t": ["max_words", "max_words#2", "regex"]}
