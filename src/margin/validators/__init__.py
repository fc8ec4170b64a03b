"""Validators: built-in checks, the verdict type and the registry (built-ins + entry points)."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from margin.suite.source import short_repr
from margin.validators.base import (
    CheckContext,
    Validator,
    ValidatorSpecError,
    Verdict,
)
from margin.validators.judge import JudgeValidator
from margin.validators.structured import STRUCTURED_VALIDATORS
from margin.validators.text import TEXT_VALIDATORS

__all__ = [
    "CheckContext",
    "Validator",
    "ValidatorSpecError",
    "Verdict",
    "build_validator",
    "register",
    "registry",
    "run_validators",
]

ENTRY_POINT_GROUP = "margin.validators"

_EXTRA: dict[str, type[Validator]] = {}


def register(cls: type[Validator]) -> type[Validator]:
    """Make a Validator subclass usable in suites under `cls.name` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Validator)):
        raise TypeError(f"{cls!r} is not a margin Validator subclass")
    _EXTRA[cls.name] = cls
    registry.cache_clear()
    return cls


@lru_cache(maxsize=1)
def registry() -> Mapping[str, type[Validator]]:
    """Every validator by name: built-ins, `margin.validators` entry points, register()."""
    builtins: list[type[Validator]] = [*TEXT_VALIDATORS, *STRUCTURED_VALIDATORS, JudgeValidator]
    found: dict[str, type[Validator]] = {cls.name: cls for cls in builtins}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Validator)):
            raise TypeError(f"entry point {point.value} is not a margin Validator subclass")
        found[cls.name] = cls
    found.update(_EXTRA)
    return found


def build_validator(spec: Any) -> Validator:
    """Build a validator from a suite entry: `name`, `{name: short value}` or `{name: {...}}`.

    Raises ValidatorSpecError with the path inside the entry where the problem is.
    """
    arg: Any
    loc_prefix: tuple[str | int, ...]
    if isinstance(spec, str):
        name, arg, loc_prefix = spec, {}, ()  # a bare name: every option at its default
    elif isinstance(spec, dict) and len(spec) == 1:
        name, arg = next(iter(spec.items()))
        loc_prefix = (str(name),)
    else:
        raise ValidatorSpecError(
            "a validator entry is one key, the validator's name, e.g. `max_words: 12`"
        )
    known = registry()
    if name not in known:
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
        raise ValidatorSpecError(f"unknown validator {name!r} ({hint})", loc_prefix)
    cls = known[name]
    try:
        return cls.from_arg(arg)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown option {loc[-1]!r}; expected one of {sorted(cls.model_fields)}"
        elif first["type"] == "missing":
            message = f"missing option {loc[-1]!r}"
        else:
            field = next((p for p in loc if isinstance(p, str) and p in cls.model_fields), None)
            if field is not None:
                loc = loc[: loc.index(field) + 1]  # drop pydantic's union tags (`.str`)
                annotation = cls.model_fields[field].annotation
                shapes = describe(annotation)
                got = short_repr(first.get("input"))
                if len([a for a in typing.get_args(annotation) if a is not type(None)]) > 1:
                    message = f"{field} takes {shapes}, got {got}"  # which member failed is noise
                else:
                    message = f"{message}; {field} takes {shapes}, got {got}"
            if loc and not cls.long_form(arg):
                loc = ()  # a short form has no inner fields to point at
        raise ValidatorSpecError(message, (*loc_prefix, *loc)) from None


def describe(annotation: Any) -> str:
    """A type annotation in words: `str | list[str] | None` → "text or a list of texts"."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Annotated:
        return describe(args[0])
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin is list:
        inner = describe(args[0]) if args else "values"
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    words = {str: "a text", int: "a whole number", float: "a number", bool: "true or false"}
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


def run_validators(
    validators: tuple[Validator, ...], output: str, ctx: CheckContext
) -> list[Verdict]:
    """Every validator's verdict on `output`. A validator that crashes leaves its verdict
    unscored, with the crash as its reason: its bug is never the model's failure. A validator
    that needs a model call (`judge`) is the runner's to decide: it is skipped."""
    verdicts = []
    for validator in validators:
        if validator.needs_model:
            continue
        try:
            verdicts.append(validator.check(output, ctx))
        except Exception as exc:  # a plugin bug must not lose the attempt; it is recorded
            crashed = validator.verdict(False, f"validator crashed: {type(exc).__name__}: {exc}")
            verdicts.append(crashed.model_copy(update={"unscored": True}))
    return verdicts
