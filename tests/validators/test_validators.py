"""Built-in validators: verdicts with reasons, short and long forms, the registry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from margin.validators import (
    CheckContext,
    Validator,
    ValidatorSpecError,
    Verdict,
    build_validator,
    register,
    registry,
    run_validators,
)

NO = CheckContext()


def check(spec: object, output: str, **expect: object) -> Verdict:
    return build_validator(spec).check(output, CheckContext(expect=expect))


def test_every_design_validator_is_registered() -> None:
    assert set(registry()) >= {
        "max_words",
        "max_chars",
        "max_lines",
        "single_line",
        "contains_all",
        "contains_any",
        "must_not_contain",
        "regex",
        "starts_with",
        "equals",
        "json",
        "json_schema",
        "contains_json",
        "json_fields",
        "number_equals",
        "choice",
        "python_syntax",
    }


@pytest.mark.parametrize(
    ("spec", "output", "passed", "reason"),
    [
        ({"max_words": 3}, "one two three", True, "3 words ≤ 3"),
        ({"max_words": 3}, "one two three four", False, "4 words > 3"),
        ({"max_chars": 5}, "  abcdef ", False, "6 chars > 5"),
        ({"max_lines": 2}, "a\n\nb\nc", False, "3 lines > 2"),
        ({"single_line": True}, "title\n", True, "one line"),
        ("single_line", "a\nb", False, "2 lines"),
        ({"contains_all": ["1234", "refund"]}, "Refund for 1234", True, "has '1234', 'refund'"),
        ({"contains_all": ["1234", "refund"]}, "Order 1234", False, "missing 'refund'"),
        ({"contains_any": ["late", "delayed"]}, "Parcel delayed", True, "has 'delayed'"),
        ({"must_not_contain": ["furious", "!"]}, "I am furious!", False, "contains 'furious', '!'"),
        ({"must_not_contain": ["angry"]}, "Order delayed", True, "none of 1 forbidden phrases"),
        ({"regex": r"^\d{4}$"}, "1234", True, r"matches /^\d{4}$/"),
        (
            {"regex": {"pattern": "sorry", "match": False}},
            "We are sorry",
            False,
            "/sorry/ matched 'sorry'",
        ),
        ({"starts_with": "Title:"}, "title: Lost parcel", True, "starts with 'Title:'"),
        ({"equals": "billing"}, "  Billing ", True, "equals 'billing'"),
        (
            {"equals": {"value": "billing", "case_sensitive": True}},
            "Billing",
            False,
            "'Billing' ≠ 'billing'",
        ),
        ("json", '{"a": 1}', True, "JSON dict"),
        ("json", '```json\n{"a": 1}\n```', True, "JSON dict"),
        (
            {"json": {"allow_fence": False}},
            "```json\n{}\n```",
            False,
            "not JSON: Expecting value at line 1 column 1",
        ),
        (
            {"json_schema": {"type": "object", "required": ["a"]}},
            '{"b": 1}',
            False,
            "(root): 'a' is a required property",
        ),
        (
            {"json_fields": {"total": 12.5, "customer.name": "Ann"}},
            '{"total": 12.5, "customer": {"name": "Ann"}}',
            True,
            "2 fields equal",
        ),
        ({"json_fields": {"total": 12.5}}, '{"total": 12}', False, "total: 12 ≠ 12.5"),
        ({"number_equals": 579}, "The answer is 579.", True, "579 = 579"),
        ({"number_equals": {"value": 1110, "pick": "only"}}, "1,110", True, "1110 = 1110"),
        (
            {"number_equals": {"value": 5, "pick": "only"}},
            "2 + 3 = 5",
            False,
            "3 numbers, expected exactly one",
        ),
        ({"number_equals": 5}, "five", False, "no number in the output"),
        ({"choice": ["billing", "shipping"]}, "**Shipping.**", True, "label 'shipping'"),
        (
            {"choice": ["billing", "shipping"]},
            "sales",
            False,
            "'sales' is not one of ['billing', 'shipping']",
        ),
        ({"contains_json": {}}, 'Here: {"a": 1} and {"b": [2]}.', True, "2 JSON object(s)"),
        (
            {"contains_json": {}},
            "Here: [1, 2] and {not json}",
            False,
            "no JSON object in the answer",
        ),
        (
            {"contains_json": {"type": "object", "required": ["b"]}},
            'Sure! {"a": 1} then {"b": 2}',
            True,
            "a JSON object matches the schema",
        ),
        (
            {"contains_json": {"type": "object", "required": ["c"]}},
            'Sure! {"a": 1}',
            False,
            "(root): 'c' is a required property",
        ),
        ("python_syntax", "def f(:\n", False, "syntax error: invalid syntax at line 1"),
        ("python_syntax", "```python\nprint(1)\n```", True, "valid Python"),
    ],
)
def test_verdicts_carry_the_evidence(spec: object, output: str, passed: bool, reason: str) -> None:
    verdict = check(spec, output)
    assert verdict.passed is passed
    assert verdict.reason == reason
    assert 0.0 <= verdict.score <= 1.0


def test_from_expect_reads_the_case() -> None:
    assert check({"contains_all": {"from_expect": "order"}}, "Order 1234 late", order="1234").passed
    assert not check(
        {"contains_all": {"from_expect": "order", "whole_word": True}}, "Order 12345", order="1234"
    ).passed
    verdict = check({"choice": {"labels": ["a", "b"], "from_expect": "q"}}, "a", q="b")
    assert (verdict.passed, verdict.reason) == (False, "label 'a', expected 'b'")
    assert check({"number_equals": {"from_expect": "sum"}}, "852", sum=852).passed
    assert check(
        {"json_fields": {"from_expect": "f", "tolerance": 0.01}}, '{"t": 1.004}', f={"t": 1}
    ).passed


def test_partial_scores_are_graded() -> None:
    verdict = check({"contains_all": ["a1", "b2", "c3", "d4"]}, "a1 b2 c3")
    assert verdict.score == pytest.approx(0.75)
    verdict = check({"json_fields": {"a": 1, "b": 2}}, '{"a": 1, "b": 3}')
    assert verdict.score == pytest.approx(0.5)


def test_nothing_the_model_wrote_is_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    assert check("python_syntax", code).passed
    assert not marker.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"max_word": 3}, "did you mean 'max_words'"),
        ({"regex": "(x"}, "bad regex"),
        ({"contains_all": {"values": ["a"], "from_expect": "b"}}, "exactly one of"),
        ({"a": 1, "b": 2}, "one key"),
        (["max_words"], "one key"),
        ("max_words", "missing option 'max'"),
    ],
)
def test_bad_specs_say_why(spec: object, message: str) -> None:
    with pytest.raises(ValidatorSpecError, match=message.replace("(", r"\(")):
        build_validator(spec)


def test_user_validators_register_and_crashes_are_recorded() -> None:
    @register
    class Shouty(Validator):
        """The output is upper case."""

        name = "shouty"

        def check(self, output: str, ctx: CheckContext) -> Verdict:
            if output == "boom":
                raise RuntimeError("bug in plugin")
            return self.verdict(output.isupper(), "upper" if output.isupper() else "not upper")

    assert "shouty" in registry()
    built = (build_validator("shouty"), build_validator({"max_words": 1}))
    verdicts = run_validators(built, "boom", NO)
    assert verdicts[0].passed is False and "validator crashed: RuntimeError" in verdicts[0].reason
    assert verdicts[1].passed is True


@given(st.text(max_size=200), st.integers(min_value=1, max_value=50))
def test_max_words_agrees_with_split(text: str, limit: int) -> None:
    verdict = check({"max_words": limit}, text)
    assert verdict.passed == (len(text.split()) <= limit)


@given(st.text(max_size=300))
def test_no_validator_raises_on_any_output(text: str) -> None:
    specs: list[object] = [
        "json",
        "python_syntax",
        "single_line",
        {"number_equals": 3},
        {"choice": ["a", "b"]},
        {"json_fields": {"a": 1}},
        {"json_schema": {"type": "object"}},
        {"contains_json": {"type": "object"}},
        {"regex": "a+"},
        {"contains_all": ["x"]},
        {"equals": "y"},
        {"starts_with": "z"},
    ]
    for spec in specs:
        verdict = check(spec, text)
        assert isinstance(verdict.passed, bool) and verdict.reason


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=5))
def test_number_equals_reads_the_last_number(numbers: list[int]) -> None:
    text = " then ".join(f"{n:,}" for n in numbers)
    assert check({"number_equals": numbers[-1]}, text).passed


def test_json_fields_takes_a_list_of_flat_expect_keys() -> None:
    from margin.validators import CheckContext, build_validator

    check = build_validator(
        {"json_fields": {"from_expect": ["order_id", "total"], "tolerance": 0.01}}
    )
    ctx = CheckContext(expect={"order_id": "A-17", "total": 12.5, "note": "unused"})
    assert check.expect_keys() == frozenset({"order_id", "total"})
    assert check.check('{"order_id": "A-17", "total": 12.499}', ctx).passed
    wrong = check.check('{"order_id": "A-18", "total": 12.5}', ctx)
    assert not wrong.passed and wrong.score == 0.5 and 'order_id: "A-18" ≠ "A-17"' in wrong.reason
    assert check.case_problem({"order_id": "A-17"}) == (
        "case has no expect.total, which validator 'json_fields' reads"
    )
