"""Guards: which validators can run in production, and the guard parts of the others."""

from __future__ import annotations

import pytest

from margin.validators import CheckContext, build_validator
from margin.validators.guards import derived_guards, guard_problem, named_guards, validator_labels

NO_EXPECT = CheckContext(vars={"text": "hello"})
"""A production context: the case's vars, no expect (a guard part that read it would raise)."""

GUARDS = [
    {"max_words": 12},
    {"max_chars": 80},
    {"max_lines": 2},
    "single_line",
    {"contains_all": ["a"]},
    {"contains_any": ["a", "b"]},
    {"must_not_contain": ["x"]},
    {"regex": "^[a-z]+$"},
    {"starts_with": "Order"},
    {"equals": "yes"},
    "json",
    {"json_schema": {"type": "object"}},
    {"contains_json": {"type": "object"}},
    {"json_fields": {"status": "ok"}},
    {"number_equals": 4},
    {"choice": ["yes", "no"]},
    {"python_syntax": True},
    {"judge": "Is {{ output }} polite about {{ text }}?"},
]
READ_EXPECT = [
    ({"contains_all": {"from_expect": "facts"}}, False),
    ({"contains_any": {"from_expect": "facts"}}, False),
    ({"must_not_contain": {"from_expect": "bad"}}, False),
    ({"starts_with": {"from_expect": "start"}}, False),
    ({"equals": {"from_expect": "answer"}}, False),
    ({"json_fields": {"from_expect": "fields"}}, True),
    ({"json_fields": {"from_expect": ["order_id", "total"]}}, True),
    ({"number_equals": {"from_expect": "sum"}}, True),
    ({"choice": {"labels": ["yes", "no"], "from_expect": "label"}}, True),
    ({"judge": {"rubric": "Is {{ first }} better than {{ second }}?", "reference": "x"}}, False),
    ({"judge": "Does {{ output }} name {{ expect.order }}?"}, False),
]


@pytest.mark.parametrize("spec", GUARDS, ids=str)
def test_a_validator_reading_only_answer_and_vars_is_a_guard(spec: object) -> None:
    validator = build_validator(spec)
    assert validator.is_guard() and validator.has_guard_part()
    assert not validator.reads_expect()


@pytest.mark.parametrize(("spec", "has_part"), READ_EXPECT, ids=str)
def test_a_validator_reading_expect_or_a_reference_is_no_guard(
    spec: object, has_part: bool
) -> None:
    validator = build_validator(spec)
    assert validator.reads_expect() and not validator.is_guard()
    assert validator.has_guard_part() is has_part
    if not has_part:
        assert validator.guard_check("anything", NO_EXPECT) is None


def test_a_whole_guard_s_guard_check_is_its_check() -> None:
    validator = build_validator({"max_words": 2})
    for answer in ("two words", "three words here"):
        assert validator.guard_check(answer, NO_EXPECT) == validator.check(answer, NO_EXPECT)


def test_choice_guard_part_checks_the_label_only() -> None:
    choice = build_validator({"choice": {"labels": ["billing", "shipping"], "from_expect": "q"}})
    right, wrong = CheckContext(expect={"q": "shipping"}), CheckContext(expect={"q": "billing"})
    guard = choice.guard_check("**Shipping.**", NO_EXPECT)
    assert guard is not None and guard.passed and guard.reason == "label 'shipping'"
    assert choice.check("**Shipping.**", right).passed
    silent = choice.check("**Shipping.**", wrong)  # the guard lets it through; it is wrong
    assert not silent.passed and silent.reason == "label 'shipping', expected 'billing'"
    caught = choice.guard_check("refund", NO_EXPECT)
    assert caught is not None and not caught.passed
    assert caught.reason == "'refund' is not one of ['billing', 'shipping']"
    assert caught == choice.check("refund", right)


def test_json_fields_guard_part_checks_that_the_answer_is_a_json_object() -> None:
    fields = build_validator({"json_fields": {"from_expect": "fields", "tolerance": 0.005}})
    ctx = CheckContext(expect={"fields": {"order_id": "A-1", "total": 14.5}})
    parses_but_wrong = '{"order_id": "A-1", "total": 41.5}'
    guard = fields.guard_check(parses_but_wrong, NO_EXPECT)
    assert guard is not None and guard.passed and guard.reason == "a JSON object"
    assert not fields.check(parses_but_wrong, ctx).passed
    fenced = fields.guard_check('```json\n{"order_id": "A-1"}\n```', NO_EXPECT)
    assert fenced is not None and fenced.passed
    for broken, reason in (("[1, 2]", "JSON list, not an object"), ("{order_id: A-1", None)):
        verdict = fields.guard_check(broken, NO_EXPECT)
        assert verdict is not None and not verdict.passed and verdict.score == 0.0
        assert verdict == fields.check(broken, ctx)  # the same failure, with or without expect
        if reason is not None:
            assert verdict.reason == reason
    fixed = build_validator({"json_fields": {"status": "ok"}})  # no expect: wholly a guard
    assert fixed.guard_check('{"status": "late"}', NO_EXPECT) == fixed.check(
        '{"status": "late"}', NO_EXPECT
    )


def test_number_equals_guard_part_checks_that_a_number_is_there() -> None:
    only = build_validator({"number_equals": {"from_expect": "sum", "pick": "only"}})
    passed = only.guard_check("It is 1,227.", NO_EXPECT)
    assert passed is not None and passed.passed and passed.reason == "a number: 1227"
    for answer, reason in (("no idea", "no number in the output"), ("12 or 13", "2 numbers")):
        verdict = only.guard_check(answer, NO_EXPECT)
        assert verdict is not None and not verdict.passed and verdict.reason.startswith(reason)


def test_labels_and_derived_guards_follow_the_task_order() -> None:
    validators = [
        build_validator(spec)
        for spec in (
            {"regex": "^a"},
            {"contains_all": {"from_expect": "facts"}},
            {"regex": "b$"},
            {"choice": {"labels": ["x", "y"], "from_expect": "label"}},
        )
    ]
    assert validator_labels(validators) == ["regex", "contains_all", "regex#2", "choice"]
    derived = [(g.label, g.whole) for g in derived_guards(validators)]
    assert derived == [("regex", True), ("regex#2", True), ("choice", False)]
    assert [g.label for g in named_guards(validators, ["regex#2"])] == ["regex#2"]
    assert guard_problem(validators, "regex#2") is None
    assert "is not a validator of this task" in str(guard_problem(validators, "regex#3"))
    assert "reads the case's expect" in str(guard_problem(validators, "contains_all"))
    assert "only its part that needs no expect" in str(guard_problem(validators, "choice"))
