"""The verdict type, the validator base class and what every check may read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class JudgeTrace(BaseModel):
    """What a `judge` validator's model calls were: kept in the verdict, reported apart."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    model: str
    """The judge's name in the models config."""
    prompt: str
    """The judge's user message, exactly as sent."""
    swapped_prompt: str | None = None
    """For a pairwise rubric: the message with the two answers swapped."""
    answers: list[str | None]
    """Each raw answer (None: the call failed for infrastructure reasons)."""
    errors: list[str] = []
    """Infra error classes of failed judge calls."""
    agreement: float | None = None
    """Share of the usable answers that agree with the majority (self-agreement)."""
    cost_usd: float | None = 0.0
    """Dollars the judge calls cost (None when the judge's price is unknown)."""
    cost_saved_usd: float = 0.0
    """Dollars the judge's cache hits saved."""
    latency_s: float = 0.0
    """Seconds of the judge calls, summed."""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_hits: int = 0


class Verdict(BaseModel):
    """One validator's judgement of one output."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    validator: str
    """The validator's name, e.g. `max_words`."""
    passed: bool
    """Whether the constraint holds."""
    score: float = Field(ge=0.0, le=1.0)
    """How much of the constraint holds, 0..1 (1.0 when passed; graded where meaningful)."""
    reason: str
    """The evidence, for a person: `"23 words > 12"`, `"missing '1234'"`."""
    unscored: bool = False
    """No verdict: a judge could not decide (unusable answers or failed calls) or the validator
    crashed. The attempt is excluded from pass rates and counted, like an infra error."""
    judge: JudgeTrace | None = None
    """For a `judge` validator: its prompt, raw answers, cost and latency."""


@dataclass(frozen=True)
class CheckContext:
    """What a validator may read besides the output: the case's variables and expectations."""

    vars: Mapping[str, Any] = field(default_factory=dict)
    expect: Mapping[str, Any] = field(default_factory=dict)


class ValidatorSpecError(ValueError):
    """A validator entry in a suite that cannot be built; `loc` is the path inside the entry."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


class Validator(BaseModel):
    """A deterministic check of one constraint. Subclass it to write your own.

    A subclass sets `name` (the key used in suites) and, when the validator has a one-value
    short form (`max_words: 12`), `short` (the field that value fills). It implements `check`.
    Register it with `margin.validators.register` or the `margin.validators` entry-point group.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: ClassVar[str]
    short: ClassVar[str | None] = None
    needs_model: ClassVar[bool] = False
    """Deciding it takes a model call (the `judge`): the runner decides it, not `check`."""
    short_takes_mapping: ClassVar[bool] = False
    """Whether the short form's value is itself a mapping (json_fields, json_schema)."""

    def expect_keys(self) -> frozenset[str]:
        """The keys of a case's `expect` this validator reads (checked at load time): by default
        the one its `from_expect` option names, if it has that option and it is set."""
        key = getattr(self, "from_expect", None)
        if isinstance(key, list):
            return frozenset(key)
        return frozenset([key]) if key else frozenset()

    def case_problem(self, expect: Mapping[str, Any]) -> str | None:
        """Why a case's `expect` cannot feed this validator, or None (checked at load time)."""
        missing = sorted(key for key in self.expect_keys() if key not in expect)
        if missing:
            return f"case has no expect.{missing[0]}, which validator {self.name!r} reads"
        return None

    def reads_expect(self) -> bool:
        """Whether deciding it reads the case's `expect` or a reference, which production lacks."""
        return bool(self.expect_keys())

    def is_guard(self) -> bool:
        """Whether it can run in production: it reads only the answer and the case's vars."""
        return not self.reads_expect()

    def has_guard_part(self) -> bool:
        """Whether some part of it is a guard (`guard_check` gives that part's verdict)."""
        return self.is_guard()

    def guard_check(self, output: str, ctx: CheckContext) -> Verdict | None:
        """Its guard part's verdict on `output` (a guard's is its `check`), else None."""
        return self.check(output, ctx) if self.is_guard() else None

    def output_tokens_hint(self) -> int | None:
        """About how many tokens a passing answer has, when this constraint bounds it."""
        return None

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        """Judge `output`."""
        raise NotImplementedError

    def verdict(self, passed: bool, reason: str, score: float | None = None) -> Verdict:
        """A verdict from this validator; `score` defaults to 1.0 or 0.0."""
        if score is None:
            score = 1.0 if passed else 0.0
        return Verdict(validator=self.name, passed=passed, score=score, reason=reason)

    @classmethod
    def long_form(cls, arg: Any) -> bool:
        """Whether a mapping argument is the long form (named fields) rather than a short value."""
        if not isinstance(arg, dict):
            return False
        return not cls.short_takes_mapping or set(arg) <= set(cls.model_fields)

    @classmethod
    def from_arg(cls, arg: Any) -> Validator:
        """Build from the value under the validator's key in a suite (short or long form)."""
        if cls.long_form(arg):
            return cls.model_validate(arg)
        if cls.short is None:
            raise ValidatorSpecError(f"takes named options {sorted(cls.model_fields)}, got {arg!r}")
        return cls.model_validate({cls.short: arg})


def expected(ctx: CheckContext, key: str) -> Any:
    """`ctx.expect[key]`; the loader guarantees the key exists for every case."""
    return ctx.expect[key]
