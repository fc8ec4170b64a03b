"""Prompt templates: one sandboxed Jinja2 environment with StrictUndefined.

A suite is data, possibly from someone else: its templates run in Jinja's immutable sandbox (no
attribute walks into Python internals, no mutation) and name only variables that exist.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED_CHARS = 1_000_000
"""A rendered prompt longer than this is a template bug (or a loop bomb), not a prompt."""
RENDER_SECONDS = 2.0
"""A template that takes longer than this to render is a loop bomb, not a prompt."""
SUITE_RENDER_SECONDS = 5.0
"""All the renders a suite's check makes (every template × every case) share this much time."""
MAX_POWER_BITS = 100_000
"""`a ** b` may not build a number longer than this many bits."""

_WIDTH_IN_FORMAT = re.compile(r"%[-+ #0]*(?:\d{7,}|\*)|\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")
"""A %-format or str.format spec asking for a width of millions of characters."""


class _Bounded(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus: no operator, method or filter may build a string (or list)
    past MAX_RENDERED_CHARS. Checked before the value is built, so `{{ "x" * 10**10 }}` is
    refused in microseconds instead of eating the memory."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        if getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format(getattr(value, "__self__", None))
        return super().wrap_str_format(value)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _too_big(what: str) -> jinja2.exceptions.SecurityError:
    return jinja2.exceptions.SecurityError(
        f"{what} would build more than {MAX_RENDERED_CHARS:,} characters"
    )


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * times > MAX_RENDERED_CHARS:
                raise _too_big("`*`")
    elif operator == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_RENDERED_CHARS:
            raise _too_big("`+`")
    elif operator == "**" and _huge_power(left, right):
        raise jinja2.exceptions.SecurityError("`**` would build a huge number")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)
        _check_arguments(right if isinstance(right, tuple) else (right,), {})


def _huge_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int) and isinstance(exponent, int)) or abs(base) <= 1:
        return False
    return exponent > 0 and exponent * abs(base).bit_length() > MAX_POWER_BITS


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_RENDERED_CHARS:
            raise _too_big(f"an argument of {value:,}")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDTH_IN_FORMAT.search(text):
        raise _too_big("a format width")


def _bounded_filter(name: str) -> Any:
    original = jinja2.filters.FILTERS[name]
    # Filters marked pass_environment / pass_eval_context get that object first.
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        _check_arguments(rest, kwargs)
        if name == "format":
            _check_format(value)
        if name == "replace" and len(rest) >= 2:
            size, new = len(str(value)), len(str(rest[1]))
            if size + (size + 1) * new > MAX_RENDERED_CHARS:
                raise _too_big("`replace`")
        indent = rest[0] if name == "indent" and rest and isinstance(rest[0], str) else ""
        if indent and (str(value).count("\n") + 1) * len(indent) > MAX_RENDERED_CHARS:
            raise _too_big("`indent`")
        return original(*args, **kwargs)

    if skip:
        bounded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


_ENV = _Bounded(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
for _name in ("center", "indent", "format", "replace", "wordwrap", "truncate"):
    _ENV.filters[_name] = _bounded_filter(_name)


class TemplateProblem(Exception):
    """A template that does not parse or render; `lineno` is the line inside the template."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


@lru_cache(maxsize=4096)
def _compile(text: str) -> jinja2.Template:
    try:
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None


@lru_cache(maxsize=4096)
def template_variables(text: str) -> frozenset[str]:
    """The variables a template reads (raises TemplateProblem on a syntax error)."""
    _compile(text)
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse(text)))
    except jinja2.TemplateSyntaxError as exc:  # pragma: no cover - _compile raised first
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None


class RenderBudget:
    """Time shared by many renders (a suite's check renders every template for every case).

    `clock` is read for the time left before each render; tests inject one. Within a render the
    main thread's timer stops the template when what was left runs out.
    """

    def __init__(
        self, seconds: float = SUITE_RENDER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.deadline = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (≤ 0 when none are)."""
        return self.deadline - self.clock()

    def left(self) -> float:
        """Seconds left; TemplateProblem when none are."""
        left = self.remaining()
        if left <= 0:
            raise self.spent()
        return left

    def spent(self) -> TemplateProblem:
        """The error of a budget that ran out."""
        return TemplateProblem(
            f"the suite's templates take longer than {self.seconds:g} s in all to render"
        )


def render(text: str, variables: Mapping[str, Any], budget: RenderBudget | None = None) -> str:
    """Render `text` with `variables` in the sandbox; errors become TemplateProblem.

    Output is streamed and capped, operators that would build huge values are refused before
    they do, and in the main thread a timer stops a template that loops for too long (a nested
    `range` loop can produce nothing for hours) — at most RENDER_SECONDS, and at most what is
    left of `budget`.
    """
    template = _compile(text)
    seconds = RENDER_SECONDS if budget is None else min(RENDER_SECONDS, budget.left())
    try:
        with _deadline(seconds):
            out = _capped(template.generate(**variables))
    except _TooSlow:
        if budget is not None and seconds < RENDER_SECONDS:
            raise budget.spent() from None  # the timer held what was left of the budget
        raise TemplateProblem(f"takes longer than {RENDER_SECONDS:g} s to render") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"undefined variable: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateProblem(f"unsafe template: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    return out.strip()


def _capped(chunks: Iterator[str]) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise TemplateProblem(f"renders to more than {MAX_RENDERED_CHARS:,} characters")
        parts.append(chunk)
    return "".join(parts)


class _TooSlow(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _TooSlow in this thread after `seconds` (only where signals can: the main thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
