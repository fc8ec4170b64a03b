"""Reading JSON out of an answer and comparing it, for the structured validators: a fenced
block's body, a parse with its reason, the objects anywhere in prose, a time-bounded schema check,
and field lookup and comparison."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema

from margin.validators.bounded import CHECK_SECONDS, schema_validator, time_budget

_FENCE = re.compile(r"^```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```$", re.DOTALL)


def unfence(output: str) -> str:
    """The body of an output that is one Markdown code block, else the stripped output."""
    text = output.strip()
    found = _FENCE.match(text)
    return found.group("body").strip() if found else text


def parse_json(output: str, allow_fence: bool) -> tuple[Any, str | None]:
    """(value, None) when the output is JSON, else (None, the reason it is not)."""
    text = unfence(output) if allow_fence else output.strip()
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "not JSON: nested too deep"


SCHEMA_TIMEOUT = f"a schema pattern gave up after {CHECK_SECONDS:g} s on this answer"


def schema_problem(definition: dict[str, Any], value: Any) -> str | None:
    """Why `value` is not valid against `definition` (`path: message` of the best error), or
    None when it is. Time-bounded: raises RegexTimeout when a schema pattern runs too long."""
    try:
        with time_budget():
            errors = list(schema_validator(definition).iter_errors(value))
    except RecursionError:  # the load refused schemas that recurse in place: the value is deep
        return "(root): nested too deep to check against the schema"
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def json_objects(output: str, limit: int = 50) -> list[dict[str, Any]]:
    """The JSON objects (`{…}`) found anywhere in `output`, in order, nested ones not counted
    apart: the first that parses at each `{` not inside an earlier one (at most `limit`)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = output.find("{")
    while at != -1 and len(found) < limit:
        try:
            value, end = decoder.raw_decode(output, at)
        except (json.JSONDecodeError, RecursionError):
            at = output.find("{", at + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        at = output.find("{", end)
    return found


MISSING = object()


def lookup(value: Any, dotted: str) -> Any:
    """`a.b.0.c` inside nested dicts and lists; MISSING when a step is absent."""
    for step in dotted.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return MISSING
    return value


def same(got: Any, want: Any, tolerance: float, case_sensitive: bool) -> bool:
    """`got` equals `want`: numbers within `tolerance`, text with whitespace runs collapsed (and
    letter case ignored unless `case_sensitive`), lists and objects item by item."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(got, want, abs_tol=tolerance, rel_tol=0.0)
    if isinstance(want, str) and isinstance(got, str):
        a, b = " ".join(got.split()), " ".join(want.split())
        return a == b if case_sensitive else a.casefold() == b.casefold()
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(
            same(g, w, tolerance, case_sensitive) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) == set(want) and all(
            same(got[k], want[k], tolerance, case_sensitive) for k in want
        )
    return bool(got == want)
