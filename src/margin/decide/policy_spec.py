"""Delivery policies as written: `retry(m, 2)`, `cascade(a, b*2, on=any)` parsed into steps.

Pandas-free, so the runner reads a run's policies without the estimator (`margin.decide.policies`,
which says what a policy does and how its delivery is estimated from recorded repeats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from margin.errors import UserError

_STEP = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\*\s*(\d+))?\s*$")
_ON = re.compile(r"^\s*on\s*=\s*(\w+)\s*$")
ORACLE_LABEL = "upper bound (oracle: knows the right answer)"
"""Shown beside every figure of a policy spelled `on=any`."""
UNGUARDED_LABEL = "upper bound (guards not recorded: every failure counted as caught)"
"""Shown beside an estimate whose failures' guard outcomes were not recorded."""


@dataclass(frozen=True)
class Policy:
    """Steps of (model, tries), tried in order while the answer's guards fail."""

    name: str
    """Canonical spelling (`retry(m, 2)`, `cascade(a*2, b, on=any)`): the same policy, one name."""
    steps: tuple[tuple[str, int], ...]
    oracle: bool = False
    """Spelled `on=any`: moves on when any validator fails (needs the right answer)."""

    @property
    def tries(self) -> list[str]:
        """The model of every try in order: `cascade(a*2, b)` is [a, a, b]."""
        return [model for model, tries in self.steps for _ in range(tries)]

    def goes_on(self, passed: bool | None, guards_passed: bool | None) -> bool:
        """Whether an answer makes the policy try again: some guard failed (`on=any`: some
        validator failed). An answer whose guards were not evaluated does not."""
        return passed is False if self.oracle else guards_passed is False


def parse_policy(text: str, models: set[str] | None = None) -> Policy:
    """`retry(m, 2)` or `cascade(m1, m2*2)`, optionally ending `, on=any` (the oracle upper
    bound; `on=guards`, the default, may be written too); a malformed policy or unknown model
    is a UserError (one line)."""
    found = re.fullmatch(r"\s*(retry|cascade)\s*\((.*)\)\s*", text)
    if not found:
        raise UserError(
            f"policy {text!r}: write retry(MODEL, TRIES) or cascade(MODEL, MODEL*TRIES, …),"
            " optionally ending with on=any"
        )
    kind, inside = found.group(1), found.group(2).split(",")
    oracle = False
    if inside and "=" in inside[-1]:
        on = _ON.match(inside.pop())
        if not on or on.group(1) not in ("any", "guards"):
            raise UserError(f"policy {text!r}: the last argument may only be on=guards or on=any")
        oracle = on.group(1) == "any"
    if kind == "retry":
        if len(inside) != 2 or not inside[1].strip().isdigit() or int(inside[1]) < 1:
            raise UserError(f"policy {text!r}: retry takes a model and a number of tries ≥ 1")
        steps: tuple[tuple[str, int], ...] = ((inside[0].strip(), int(inside[1])),)
    else:
        parsed = [_STEP.match(p) for p in inside]
        if len(parsed) < 2 or not all(parsed):
            raise UserError(
                f"policy {text!r}: a cascade takes two or more steps, MODEL or MODEL*TRIES"
            )
        steps = tuple((m.group(1), int(m.group(2) or 1)) for m in parsed if m)
    if any(tries < 1 for _, tries in steps):
        raise UserError(f"policy {text!r}: tries must be ≥ 1")
    unknown = [model for model, _ in steps if models is not None and model not in models]
    if unknown:
        raise UserError(f"policy {text!r}: no model {unknown[0]!r} in this run")
    if kind == "retry":
        name = f"retry({steps[0][0]}, {steps[0][1]}"
    else:
        name = "cascade(" + ", ".join(m if t == 1 else f"{m}*{t}" for m, t in steps)
    return Policy(name + (", on=any)" if oracle else ")"), steps, oracle)
