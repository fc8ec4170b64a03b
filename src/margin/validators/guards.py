"""Production guards: the checks of a task that can run on a live answer, without `expect`.

A validator is a guard when it reads only the answer and the case's vars (`Validator.is_guard`).
One that reads `expect` may still have a guard part (`choice` with `from_expect` checks that
the answer is a label; `json_fields` that it is a JSON object): `Validator.guard_check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin.validators.base import Validator


@dataclass(frozen=True)
class Guard:
    """One production guard of a task: a validator, whole or only its guard part."""

    label: str
    """The validator's label in the task: its name, `name#2` for the second of that name."""
    validator: Validator
    whole: bool
    """Its recorded verdict is the guard's; else only `validator.guard_check` decides."""


def validator_labels(validators: Sequence[Validator]) -> list[str]:
    """Each validator's label: its name, `name#k` for the k-th of that name (as verdicts are)."""
    seen: dict[str, int] = {}
    labels = []
    for validator in validators:
        count = seen[validator.name] = seen.get(validator.name, 0) + 1
        labels.append(validator.name if count == 1 else f"{validator.name}#{count}")
    return labels


def derived_guards(validators: Sequence[Validator]) -> tuple[Guard, ...]:
    """Every guard of a task, found from what its validators read: guard parts included."""
    return tuple(
        Guard(label, validator, validator.is_guard())
        for label, validator in zip(validator_labels(validators), validators, strict=True)
        if validator.has_guard_part()
    )


def guard_problem(validators: Sequence[Validator], label: str) -> str | None:
    """Why `label` cannot be named in a task's `guards:`, or None."""
    labels = validator_labels(validators)
    if label not in labels:
        return f"guard {label!r} is not a validator of this task (it has {', '.join(labels)})"
    validator = validators[labels.index(label)]
    if validator.is_guard():
        return None
    part = "; only its part that needs no expect is a guard (leave out `guards:` to count it)"
    return (
        f"guard {label!r} reads the case's expect or a reference, which production answers"
        f" lack{part if validator.has_guard_part() else ''}"
    )


def named_guards(validators: Sequence[Validator], labels: Sequence[str]) -> tuple[Guard, ...]:
    """The guards a task names (each label checked by `guard_problem` at load), in task order."""
    named = set(labels)
    return tuple(
        Guard(label, validator, True)
        for label, validator in zip(validator_labels(validators), validators, strict=True)
        if label in named
    )
