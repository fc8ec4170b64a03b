"""Length and text validators: max_words, max_chars, max_lines, single_line, contains_all,
contains_any, must_not_contain, regex, starts_with, equals."""

from __future__ import annotations

import re
from typing import Literal

import regex
from pydantic import Field, field_validator, model_validator

from margin.validators.base import CheckContext, Validator, Verdict, expected
from margin.validators.bounded import (
    CHECK_SECONDS,
    RegexTimeout,
    bounded_search,
    compile_pattern,
    time_budget,
)


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class MaxWords(Validator):
    """At most `max` words (split on whitespace)."""

    name = "max_words"
    short = "max"
    max: int = Field(ge=1)
    """The most words allowed."""

    def output_tokens_hint(self) -> int | None:
        return int(self.max * 1.4) + 4

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        words = len(output.split())
        if words <= self.max:
            return self.verdict(True, f"{words} words ≤ {self.max}")
        return self.verdict(False, f"{words} words > {self.max}")


class MaxChars(Validator):
    """At most `max` characters, surrounding whitespace ignored."""

    name = "max_chars"
    short = "max"
    max: int = Field(ge=1)
    """The most characters allowed."""

    def output_tokens_hint(self) -> int | None:
        return self.max // 3 + 4

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        chars = len(output.strip())
        ok = chars <= self.max
        return self.verdict(ok, f"{chars} chars {'≤' if ok else '>'} {self.max}")


class MaxLines(Validator):
    """At most `max` non-empty lines."""

    name = "max_lines"
    short = "max"
    max: int = Field(ge=1)
    """The most non-empty lines allowed."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        lines = sum(1 for line in output.splitlines() if line.strip())
        ok = lines <= self.max
        return self.verdict(ok, f"{lines} lines {'≤' if ok else '>'} {self.max}")


class SingleLine(Validator):
    """The output, stripped, is one line."""

    name = "single_line"
    short = "enabled"
    enabled: Literal[True] = True
    """Always true; write `single_line: true`."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        if len(lines) <= 1:
            return self.verdict(True, "one line")
        return self.verdict(False, f"{len(lines)} lines")


class _Phrases(Validator):
    """Shared shape of validators over a list of phrases, given or taken from the case."""

    short = "values"
    values: list[str] | None = Field(default=None, min_length=1)
    """The phrases, written in the suite."""
    from_expect: str | None = None
    """Instead of `values`: the key of the case's `expect` holding the phrase(s)."""
    case_sensitive: bool = False
    """Match letter case exactly (default: ignore case)."""
    whole_word: bool = False
    """Match only at word boundaries (so '12' does not match inside '1234')."""

    @model_validator(mode="after")
    def _one_source(self) -> _Phrases:
        if (self.values is None) == (self.from_expect is None):
            raise ValueError("give exactly one of 'values' or 'from_expect'")
        return self

    def phrases(self, ctx: CheckContext) -> list[str]:
        if self.values is not None:
            return self.values
        value = expected(ctx, str(self.from_expect))
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def found(self, phrase: str, output: str) -> bool:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        pattern = re.escape(phrase)
        if self.whole_word:
            pattern = rf"(?<!\w){pattern}(?!\w)"
        return re.search(pattern, output, flags) is not None


class ContainsAll(_Phrases):
    """Every phrase appears in the output."""

    name = "contains_all"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        phrases = self.phrases(ctx)
        missing = [p for p in phrases if not self.found(p, output)]
        score = 1 - len(missing) / len(phrases) if phrases else 1.0
        if missing:
            return self.verdict(False, "missing " + ", ".join(map(repr, missing)), score)
        return self.verdict(True, "has " + ", ".join(map(repr, phrases)))


class ContainsAny(_Phrases):
    """At least one phrase appears in the output."""

    name = "contains_any"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        phrases = self.phrases(ctx)
        hits = [p for p in phrases if self.found(p, output)]
        if hits:
            return self.verdict(True, f"has {hits[0]!r}")
        return self.verdict(False, "none of " + ", ".join(map(repr, phrases)))


class MustNotContain(_Phrases):
    """No phrase appears in the output."""

    name = "must_not_contain"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        phrases = self.phrases(ctx)
        hits = [p for p in phrases if self.found(p, output)]
        score = 1 - len(hits) / len(phrases) if phrases else 1.0
        if hits:
            return self.verdict(False, "contains " + ", ".join(map(repr, hits)), score)
        return self.verdict(True, f"none of {len(phrases)} forbidden phrases")


_FLAGS = "imsx"


class Regex(Validator):
    """The output matches (or, with `match: false`, does not match) a regular expression."""

    name = "regex"
    short = "pattern"
    pattern: str
    """A Python regular expression."""
    flags: str = ""
    """Any of `i` (ignore case), `m` (multiline), `s` (dot matches newline), `x` (verbose)."""
    full: bool = False
    """The whole stripped output must match, not just a part of it."""
    match: bool = True
    """`false` inverts the check: the pattern must not occur."""

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: str) -> str:
        unknown = sorted(set(flags) - set(_FLAGS))
        if unknown:
            raise ValueError(f"unknown regex flag(s) {''.join(unknown)!r}; use i, m, s, x")
        return flags

    @model_validator(mode="after")
    def _compiles(self) -> Regex:
        try:
            re.compile(self.pattern)  # Python's syntax, as documented
            compile_pattern(self.pattern, self.flags)
        except (re.error, regex.error, ValueError) as exc:
            raise ValueError(f"bad regex {self.pattern!r}: {exc}") from None
        return self

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        pattern = compile_pattern(self.pattern, self.flags)
        text = output.strip()
        shown = f"/{self.pattern}/"
        try:
            with time_budget():
                found = bounded_search(pattern, text, full=self.full)
        except RegexTimeout:
            return self.verdict(
                False,
                f"{shown} gave up after {CHECK_SECONDS:g} s on a {len(text):,}-character answer"
                " (catastrophic backtracking: the pattern, not the answer, needs fixing)",
            )
        if self.match:
            if found is not None:
                return self.verdict(True, f"matches {shown}")
            return self.verdict(False, f"no match for {shown} in {_quote(text)}")
        if found is not None:
            return self.verdict(False, f"{shown} matched {found.group(0)!r}")
        return self.verdict(True, f"no {shown}")


class _Expected(Validator):
    """Shared shape of validators comparing with one expected string."""

    short = "value"
    value: str | None = None
    """The expected text, written in the suite."""
    from_expect: str | None = None
    """Instead of `value`: the key of the case's `expect` holding it."""
    case_sensitive: bool = False
    """Compare letter case exactly (default: ignore case)."""

    @model_validator(mode="after")
    def _one_source(self) -> _Expected:
        if (self.value is None) == (self.from_expect is None):
            raise ValueError("give exactly one of 'value' or 'from_expect'")
        return self

    def target(self, ctx: CheckContext) -> str:
        return self.value if self.value is not None else str(expected(ctx, str(self.from_expect)))

    def fold(self, text: str) -> str:
        return text if self.case_sensitive else text.casefold()


class StartsWith(_Expected):
    """The stripped output starts with the given text."""

    name = "starts_with"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        prefix = self.target(ctx)
        if self.fold(output.strip()).startswith(self.fold(prefix)):
            return self.verdict(True, f"starts with {prefix!r}")
        return self.verdict(False, f"starts with {_quote(output.strip(), 30)}, not {prefix!r}")


class Equals(_Expected):
    """The stripped output equals the given text (whitespace runs collapsed)."""

    name = "equals"

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        want = self.target(ctx)
        got = " ".join(output.split())
        if self.fold(got) == self.fold(" ".join(want.split())):
            return self.verdict(True, f"equals {want!r}")
        return self.verdict(False, f"{_quote(got)} ≠ {want!r}")


TEXT_VALIDATORS: tuple[type[Validator], ...] = (
    MaxWords,
    MaxChars,
    MaxLines,
    SingleLine,
    ContainsAll,
    ContainsAny,
    MustNotContain,
    Regex,
    StartsWith,
    Equals,
)
