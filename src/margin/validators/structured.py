"""Structure, number, label and code validators: json, json_schema, contains_json, json_fields,
number_equals, choice, python_syntax (json_values.py reads and compares the JSON). None of them
executes anything the model wrote."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
from pydantic import Field, model_validator

from margin.validators.base import CheckContext, Validator, Verdict, expected
from margin.validators.bounded import RegexTimeout, external_refs, recursion_problem
from margin.validators.json_values import (
    MISSING,
    SCHEMA_TIMEOUT,
    json_objects,
    lookup,
    parse_json,
    same,
    schema_problem,
    unfence,
)


class Json(Validator):
    """The output parses as JSON."""

    name = "json"
    short = "enabled"
    enabled: Literal[True] = True
    """Always true; write `json: true`."""
    allow_fence: bool = True
    """Accept JSON wrapped in one Markdown code block (```json … ```)."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        value, problem = parse_json(output, self.allow_fence)
        if problem:
            return self.verdict(False, problem)
        return self.verdict(True, f"JSON {type(value).__name__}")


class JsonSchema(Validator):
    """The output is JSON valid against a JSON Schema."""

    name = "json_schema"
    short = "definition"
    short_takes_mapping = True
    definition: dict[str, Any]
    """The JSON Schema (any draft jsonschema knows; 2020-12 when `$schema` is absent)."""
    allow_fence: bool = True
    """Accept JSON wrapped in one Markdown code block."""

    @model_validator(mode="after")
    def _valid_schema(self) -> JsonSchema:
        cls = jsonschema.validators.validator_for(self.definition, jsonschema.Draft202012Validator)
        try:
            cls.check_schema(self.definition)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        outside = external_refs(self.definition)
        if outside:
            raise ValueError(
                f"$ref {outside[0]!r} points outside the schema; margin never fetches a URL or"
                " reads a file for a schema: put the definition under $defs and use '#/$defs/…'"
            )
        problem = recursion_problem(self.definition)
        if problem is not None:
            raise ValueError(problem)
        return self

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        value, problem = parse_json(output, self.allow_fence)
        if problem:
            return self.verdict(False, problem)
        try:
            problem = schema_problem(self.definition, value)
        except RegexTimeout:
            return self.verdict(False, SCHEMA_TIMEOUT)
        if problem is None:
            return self.verdict(True, "matches the schema")
        return self.verdict(False, problem)


class ContainsJson(Validator):
    """A JSON object appears somewhere in the output (prose around it allowed) — and, with a
    `definition`, one of the objects found is valid against that JSON Schema."""

    name = "contains_json"
    short = "definition"
    short_takes_mapping = True
    definition: dict[str, Any] | None = None
    """An optional JSON Schema one of the objects must match."""

    @model_validator(mode="after")
    def _valid_schema(self) -> ContainsJson:
        if self.definition is not None:
            JsonSchema(definition=self.definition)  # the same checks: a schema, nothing fetched
        return self

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        objects = json_objects(output)
        if not objects:
            return self.verdict(False, "no JSON object in the answer")
        if self.definition is None:
            return self.verdict(True, f"{len(objects)} JSON object(s)")
        last = "no object matches the schema"
        for value in objects:
            try:
                problem = schema_problem(self.definition, value)
            except RegexTimeout:
                return self.verdict(False, SCHEMA_TIMEOUT)
            if problem is None:
                return self.verdict(True, "a JSON object matches the schema")
            last = problem
        return self.verdict(False, last)


class JsonFields(Validator):
    """The output is a JSON object whose fields equal the expected values.

    Short form: `json_fields: {from_expect: fields}` or the field values themselves. Field names
    may be dotted paths (`customer.name`, `items.0.sku`). Score: share of fields that match.
    """

    name = "json_fields"
    short = "fields"
    short_takes_mapping = True
    fields: dict[str, Any] | None = None
    """Expected values by field path, written in the suite."""
    from_expect: str | list[str] | None = None
    """Instead of `fields`: the key of the case's `expect` holding a mapping of them, or a list
    of keys of a flat `expect` (each key is a field, its value the expected one)."""
    tolerance: float = Field(default=0.0, ge=0.0)
    """Absolute tolerance for numbers."""
    case_sensitive: bool = True
    """Compare strings' letter case exactly (whitespace runs are always collapsed)."""
    allow_fence: bool = True
    """Accept JSON wrapped in one Markdown code block."""

    @model_validator(mode="after")
    def _one_source(self) -> JsonFields:
        if (self.fields is None) == (self.from_expect is None):
            raise ValueError("give exactly one of 'fields' or 'from_expect'")
        return self

    def case_problem(self, expect: Mapping[str, Any]) -> str | None:
        problem = super().case_problem(expect)
        if (
            problem is None
            and isinstance(self.from_expect, str)
            and not isinstance(expect[self.from_expect], dict)
        ):
            return (
                f"expect.{self.from_expect} must map field paths to values (or write"
                f" from_expect: [{self.from_expect}, …] to compare flat expect keys)"
            )
        return problem

    def wanted(self, ctx: CheckContext) -> Mapping[str, Any]:
        """The expected value of every field for this case."""
        if self.fields is not None:
            return self.fields
        if isinstance(self.from_expect, list):
            return {key: expected(ctx, key) for key in self.from_expect}
        return dict(expected(ctx, str(self.from_expect)))

    def has_guard_part(self) -> bool:
        return True

    def guard_check(self, output: str, ctx: CheckContext) -> Verdict | None:
        """Without `expect`: the output is a JSON object (all of `check` with `fields`)."""
        if self.fields is not None:
            return self.check(output, ctx)
        value, problem = self._object(output)
        if value is None:
            return self.verdict(False, str(problem))
        return self.verdict(True, "a JSON object")

    def _object(self, output: str) -> tuple[dict[str, Any] | None, str | None]:
        value, problem = parse_json(output, self.allow_fence)
        if problem:
            return None, problem
        if not isinstance(value, dict):
            return None, f"JSON {type(value).__name__}, not an object"
        return value, None

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        want = self.wanted(ctx)
        value, problem = self._object(output)
        if value is None:
            return self.verdict(False, str(problem))
        wrong = []
        for path, want_value in want.items():
            got = lookup(value, path)
            if got is MISSING:
                wrong.append(f"{path} missing")
            elif not same(got, want_value, self.tolerance, self.case_sensitive):
                wrong.append(f"{path}: {json.dumps(got)} ≠ {json.dumps(want_value)}")
        score = 1 - len(wrong) / len(want) if want else 1.0
        if wrong:
            return self.verdict(False, "; ".join(wrong), score)
        return self.verdict(True, f"{len(want)} fields equal")


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def find_numbers(text: str) -> list[float]:
    """Numbers in text, `1,234.5` read as 1234.5."""
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


class NumberEquals(Validator):
    """A number in the output equals the expected one, within `tolerance`."""

    name = "number_equals"
    short = "value"
    value: float | None = None
    """The expected number, written in the suite."""
    from_expect: str | None = None
    """Instead of `value`: the key of the case's `expect` holding it."""
    tolerance: float = Field(default=0.0, ge=0.0)
    """Absolute tolerance."""
    pick: Literal["only", "last", "first"] = "last"
    """Which number counts: `only` (the output must hold exactly one), `last` or `first`."""

    def output_tokens_hint(self) -> int | None:
        return 12 if self.pick == "only" else None

    @model_validator(mode="after")
    def _one_source(self) -> NumberEquals:
        if (self.value is None) == (self.from_expect is None):
            raise ValueError("give exactly one of 'value' or 'from_expect'")
        return self

    def case_problem(self, expect: Mapping[str, Any]) -> str | None:
        problem = super().case_problem(expect)
        if problem is None and self.from_expect:
            value = expect[self.from_expect]
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"expect.{self.from_expect} is {value!r}, not a number"
        return problem

    def has_guard_part(self) -> bool:
        return True

    def guard_check(self, output: str, ctx: CheckContext) -> Verdict | None:
        """Without `expect`: the output holds a number (exactly one with `pick: only`)."""
        if self.value is not None:
            return self.check(output, ctx)
        got, problem = self._picked(output)
        if got is None:
            return self.verdict(False, str(problem))
        return self.verdict(True, f"a number: {got:g}")

    def _picked(self, output: str) -> tuple[float | None, str | None]:
        numbers = find_numbers(output)
        if not numbers:
            return None, "no number in the output"
        if self.pick == "only" and len(numbers) > 1:
            return None, f"{len(numbers)} numbers, expected exactly one"
        return (numbers[0] if self.pick == "first" else numbers[-1]), None

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        want = self.value if self.value is not None else float(expected(ctx, str(self.from_expect)))
        got, problem = self._picked(output)
        if got is None:
            return self.verdict(False, str(problem))
        shown_got, shown_want = f"{got:g}", f"{want:g}"
        if math.isclose(got, want, abs_tol=self.tolerance, rel_tol=0.0):
            return self.verdict(True, f"{shown_got} = {shown_want}")
        return self.verdict(False, f"{shown_got} ≠ {shown_want}")


_EDGE_NOISE = " \t\r\n\"'`*.:"


class Choice(Validator):
    """The output is one of the allowed labels (and, with `from_expect`, the expected one).

    Surrounding quotes, backticks, asterisks, colons and a final full stop are ignored.
    """

    name = "choice"
    short = "labels"
    labels: list[str] = Field(min_length=2)
    """The allowed labels."""
    from_expect: str | None = None
    """The key of the case's `expect` holding the right label."""
    case_sensitive: bool = False
    """Compare letter case exactly (default: ignore case)."""

    def output_tokens_hint(self) -> int | None:
        return 8

    @model_validator(mode="after")
    def _expected_is_a_label(self) -> Choice:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels repeat")
        return self

    def case_problem(self, expect: Mapping[str, Any]) -> str | None:
        problem = super().case_problem(expect)
        if (
            problem is None
            and self.from_expect
            and str(expect[self.from_expect]) not in self.labels
        ):
            return f"expected label {expect[self.from_expect]!r} is not one of {self.labels}"
        return problem

    def has_guard_part(self) -> bool:
        return True

    def guard_check(self, output: str, ctx: CheckContext) -> Verdict | None:
        """Without `expect`: the output is one of the labels."""
        return self._label_verdict(*self._label(output))

    def _label(self, output: str) -> tuple[str, str | None]:
        answer = output.strip(_EDGE_NOISE)
        return answer, next((label for label in self.labels if self._same(label, answer)), None)

    def _label_verdict(self, answer: str, matched: str | None) -> Verdict:
        if matched is None:
            return self.verdict(False, f"{answer[:40]!r} is not one of {self.labels}")
        return self.verdict(True, f"label {matched!r}")

    def _same(self, a: str, b: str) -> bool:
        return a == b if self.case_sensitive else a.casefold() == b.casefold()

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        answer, matched = self._label(output)
        if matched is None or self.from_expect is None:
            return self._label_verdict(answer, matched)
        want = str(expected(ctx, self.from_expect))
        if self._same(matched, want):
            return self.verdict(True, f"label {matched!r}")
        return self.verdict(False, f"label {matched!r}, expected {want!r}")


class PythonSyntax(Validator):
    """The output parses as Python source (it is parsed, never run)."""

    name = "python_syntax"
    short = "enabled"
    enabled: Literal[True] = True
    """Always true; write `python_syntax: true`."""
    allow_fence: bool = True
    """Accept code wrapped in one Markdown code block."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        code = unfence(output) if self.allow_fence else output
        try:
            ast.parse(code)
        except SyntaxError as exc:
            return self.verdict(False, f"syntax error: {exc.msg} at line {exc.lineno}")
        except (RecursionError, MemoryError, ValueError) as exc:
            return self.verdict(False, f"not parseable: {type(exc).__name__}")
        return self.verdict(True, "valid Python")


STRUCTURED_VALIDATORS: tuple[type[Validator], ...] = (
    Json,
    JsonSchema,
    ContainsJson,
    JsonFields,
    NumberEquals,
    Choice,
    PythonSyntax,
)
