"""Regular expressions and JSON Schemas that a model's answer cannot freeze or turn outward.

A validator's pattern comes from a suite, the text it searches from a model: `(a+)+$` against a
long answer backtracks for longer than the universe has left. Patterns run on the `regex`
module, whose matching takes a timeout, within one time budget per check. JSON Schemas check
with the same bounded patterns, never follow a `$ref` outside the schema itself (no URL, no
local file), and are refused at load when checking a value would apply the schema to that same
value forever (`$ref: '#'`) — no answer could then be checked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import jsonschema
import referencing.jsonschema as dialects
import regex
from referencing import Registry, Resource, Specification
from referencing.exceptions import NoSuchResource, Unresolvable

CHECK_SECONDS = 1.0
"""Time one validator's patterns may take on one answer, all searches together."""

_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "x": regex.VERBOSE}
_DEADLINE: ContextVar[float | None] = ContextVar("margin_regex_deadline", default=None)


class RegexTimeout(Exception):
    """A pattern ran out of its time on an answer (catastrophic backtracking)."""


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, flags: str = "") -> regex.Pattern[str]:
    """`pattern` compiled with Python `re` syntax (regex's VERSION0); raises regex.error."""
    value = regex.VERSION0
    for flag in flags:
        value |= _FLAGS[flag]
    return regex.compile(pattern, value)


@contextmanager
def time_budget(seconds: float = CHECK_SECONDS) -> Iterator[None]:
    """Every bounded search inside shares `seconds` in all."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _remaining() -> float:
    deadline = _DEADLINE.get()
    if deadline is None:
        return CHECK_SECONDS
    left = deadline - time.monotonic()
    if left <= 0:
        raise RegexTimeout
    return left


def bounded_search(
    pattern: regex.Pattern[str] | str, text: str, *, full: bool = False
) -> regex.Match[str] | None:
    """`search` (or `fullmatch`) within the time left; RegexTimeout when it runs out."""
    compiled = compile_pattern(pattern) if isinstance(pattern, str) else pattern
    try:
        if full:
            return compiled.fullmatch(text, timeout=_remaining())
        return compiled.search(text, timeout=_remaining())
    except TimeoutError:
        raise RegexTimeout from None


def external_refs(schema: Any) -> list[str]:
    """Every `$ref` (and `$dynamicRef`, `$recursiveRef`) that leaves the schema itself."""
    found: list[str] = []
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(value, str):
                if not value.startswith("#"):
                    found.append(value)
            else:
                found += external_refs(value)
    elif isinstance(schema, list):
        for item in schema:
            found += external_refs(item)
    return found


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and bounded_search(pattern, instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if bounded_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(bounded_search(p, key) for p in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        shown = ", ".join(repr(key) for key in sorted(extras, key=str))
        yield jsonschema.ValidationError(f"Additional properties are not allowed ({shown})")


@lru_cache(maxsize=64)
def _bounded_class(base: type[Any]) -> type[Any]:
    validators = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    return jsonschema.validators.extend(base, validators)  # type: ignore[no-untyped-call,no-any-return]


def schema_validator(definition: Mapping[str, Any]) -> Any:
    """A jsonschema validator for `definition` whose patterns are bounded and which retrieves
    nothing from outside the schema."""
    base = jsonschema.validators.validator_for(definition, jsonschema.Draft202012Validator)
    return _bounded_class(base)(definition, registry=_NO_RETRIEVAL)


_REFS = ("$ref", "$dynamicRef", "$recursiveRef")
_SAME_VALUE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas",
               "dependencies", "extends")  # fmt: skip
"""Keywords whose subschemas check the very value their schema checks."""
_PARTS = ("properties", "patternProperties", "additionalProperties", "propertyNames",
          "unevaluatedProperties", "items", "prefixItems", "additionalItems", "unevaluatedItems",
          "contains")  # fmt: skip
"""Keywords whose subschemas check a part of the value (a property, an item, a key)."""
_MAPPINGS = frozenset({"properties", "patternProperties", "dependentSchemas", "dependencies"})
"""Keywords holding a mapping of subschemas (the others hold one, or a list)."""
_REF_ALONE = (dialects.DRAFT3, dialects.DRAFT4, dialects.DRAFT6, dialects.DRAFT7)
"""Dialects in which a `$ref` hides its sibling keywords."""
_PROBES: tuple[Any, ...] = (None, True, 0, 0.5, "", [], {})


def self_reference(ref: str | None = None) -> str:
    """The load error of a schema that checks a value against itself forever."""
    through = f" through $ref {ref!r}" if ref else ""
    return (
        f"the schema refers to itself{through} without descending into the value:"
        " checking any answer against it would never end"
    )


def recursion_problem(definition: Mapping[str, Any]) -> str | None:
    """Why checking a value against `definition` could not finish, or None: a `$ref` that
    resolves nowhere, or references that bring a schema back to the same value (`{$ref: '#'}`,
    `{allOf: [{$ref: '#'}]}`) — a recursive schema must descend into a property or an item
    first. Every subschema a value can reach is followed; a few small values are checked too,
    for what only a check resolves (`$dynamicRef`)."""
    spec = dialects.specification_with(
        str(definition.get("$schema", "")), default=dialects.DRAFT202012
    )
    marks: dict[int, bool] = {}  # a subschema's id: True while on the path, False once done
    pending = [(definition, _NO_RETRIEVAL.resolver_with_root(spec.create_resource(definition)))]
    while pending:
        schema, resolver = pending.pop()
        problem = _cycle(schema, resolver, spec, marks, pending)
        if problem is not None:
            return problem
    checker = schema_validator(definition)
    for probe in _PROBES:
        try:
            with time_budget():
                list(checker.iter_errors(probe))
        except RecursionError:
            return self_reference()
        except Unresolvable as exc:
            return f"a $ref points nowhere in the schema ({exc})"
        except RegexTimeout:
            continue
    return None


def _cycle(
    schema: Any,
    resolver: Any,  # referencing's Resolver (not exported by the package)
    spec: Specification[Any],
    marks: dict[int, bool],
    pending: list[tuple[Any, Any]],
    via: str = "#",
) -> str | None:
    """Follow (depth first) the subschemas that check the same value as `schema`, and queue in
    `pending` those that check a part of it. A subschema met again on the path is a cycle."""
    if not isinstance(schema, Mapping):
        return None  # true, false
    if id(schema) in marks:
        return self_reference(via) if marks[id(schema)] else None
    marks[id(schema)] = True
    resolver = resolver.in_subresource(spec.create_resource(schema))
    for keyword in _REFS:
        ref = schema.get(keyword)
        if not isinstance(ref, str):
            continue
        try:
            target = resolver.lookup(ref)
        except Unresolvable:
            if keyword == "$ref":
                return f"$ref {ref!r} points nowhere in the schema"
            continue  # resolved only while checking (dynamic scope): the probes try it
        problem = _cycle(target.contents, target.resolver, spec, marks, pending, ref)
        if problem is not None:
            return problem
    if not ("$ref" in schema and spec in _REF_ALONE):
        for subschema in _subschemas(schema, _SAME_VALUE):
            problem = _cycle(subschema, resolver, spec, marks, pending, via)
            if problem is not None:
                return problem
        pending += [(subschema, resolver) for subschema in _subschemas(schema, _PARTS)]
    marks[id(schema)] = False
    return None


def _subschemas(schema: Mapping[str, Any], keywords: tuple[str, ...]) -> Iterator[Any]:
    """The object subschemas under `keywords` (each holds one, a list or a mapping of them)."""
    for keyword in keywords:
        value = schema.get(keyword)
        if isinstance(value, Mapping):
            children = list(value.values()) if keyword in _MAPPINGS else [value]
        elif isinstance(value, list):
            children = value
        else:
            continue
        yield from (child for child in children if isinstance(child, Mapping))
