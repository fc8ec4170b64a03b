"""Production guards: the checks of a task that can run on a live answer, without `expect`.

A validator is a guard when it reads only the answer and the case's vars (`Validator.is_guard`).
One that reads `expect` may still have a guard part (`choice` with `from_expect` checks that
the answer is a label; `json_fields` that it is a JSON object): `Validator.guard_check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from margin.validators.base import CheckContext, Validator, Verdict


@dataclass(frozen=True)
class Guard:
    """One production guard of a task: a validator, whole or only its guard part."""

    label: str
    """The validator's label in the task: its name, `name#2` for the second of that name."""
    validator: Validator
    whole: bool
    """Its recorded verdict is the guard's; else only `validator.guard_check` decides."""


def labels_of(names: Iterable[str]) -> list[str]:
    """Each name's label: the name, `name#k` for the k-th of that name (as verdicts are)."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        count = seen[name] = seen.get(name, 0) + 1
        labels.append(name if count == 1 else f"{name}#{count}")
    return labels


def validator_labels(validators: Sequence[Validator]) -> list[str]:
    """Each validator's label in its task."""
    return labels_of(v.name for v in validators)


def derived_guards(
    validators: Sequence[Validator], labels: Sequence[str] | None = None
) -> tuple[Guard, ...]:
    """Every guard of a task (or of a case's own validators, under their `labels` in the
    case's verdicts), found from what the validators read: guard parts included."""
    labels = validator_labels(validators) if labels is None else labels
    return tuple(
        Guard(label, validator, validator.is_guard())
        for label, validator in zip(labels, validators, strict=True)
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


@dataclass(frozen=True)
class GuardOutcome:
    """What production's checks said of one answer."""

    passed: bool | None
    """Every guard passed (True too when the task has none: nothing could catch a failure);
    None when a guard could not decide (an unscored verdict)."""
    failed: tuple[str, ...]
    """The labels of the guards that failed, in task order."""


def guard_outcome(
    guards: Sequence[Guard], verdicts: Sequence[Verdict], output: str, ctx: CheckContext
) -> GuardOutcome:
    """Run production's view of an answer: a whole guard's recorded verdict (its label among
    `verdicts`; a judge skipped for want of a judge model has none and is no guard), a guard
    part's own check on `output`."""
    recorded = dict(zip(labels_of(v.validator for v in verdicts), verdicts, strict=True))
    failed: list[str] = []
    unknown = False
    for guard in guards:
        if guard.whole:
            verdict = recorded.get(guard.label)
        else:
            verdict = guard.validator.guard_check(output, ctx)
        if verdict is None:
            continue
        unknown = unknown or verdict.unscored
        if not verdict.passed and not verdict.unscored:
            failed.append(guard.label)
    if failed:
        return GuardOutcome(False, tuple(failed))
    return GuardOutcome(None if unknown else True, ())
