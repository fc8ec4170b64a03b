"""Prompt templates: one sandboxed Jinja2 environment with StrictUndefined.

A suite is data, possibly from someone else: its templates run in Jinja's immutable sandbox (no
attribute walks into Python internals, no mutation) and name only variables that exist.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)

MAX_RENDERED_CHARS = 1_000_000
"""A rendered prompt longer than this is a template bug (or a loop bomb), not a prompt."""
RENDER_SECONDS = 2.0
"""A template that takes longer than this to render is a loop bomb, not a prompt."""


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


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render `text` with `variables` in the sandbox; errors become TemplateProblem.

    Output is streamed and capped, and in the main thread a timer stops a template that loops
    for too long (a nested `range` loop can produce nothing for hours).
    """
    template = _compile(text)
    try:
        with _deadline(RENDER_SECONDS):
            out = _capped(template.generate(**variables))
    except _TooSlow:
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
