"""Prompt templates: one sandboxed Jinja2 environment with StrictUndefined.

A suite is data, possibly from someone else: its templates run in Jinja's immutable sandbox (no
attribute walks into Python internals, no mutation) and name only variables that exist.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """Render `text` with `variables` in the sandbox; errors become TemplateProblem."""
    template = _compile(text)
    try:
        out = template.render(**variables)
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"undefined variable: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateProblem(f"unsafe template: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    if len(out) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"renders to {len(out):,} characters (limit {MAX_RENDERED_CHARS:,})")
    return out.strip()
