"""The suite model: Suite → Task → Case, with their validators and noise levels (pydantic,
`extra="forbid"`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from margin.suite.source import Loc
from margin.validators import Validator, build_validator
from margin.validators.guards import Guard, derived_guards, named_guards, validator_labels
from margin.validators.judge import JudgeValidator

Ident = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length=1, max_length=80)
]
"""An id: letters, digits, `_ . -`, starting with a letter or digit."""

Levels = Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]

PERTURB_KINDS = (
    "typos",
    "case",
    "whitespace",
    "mildmix",
    "distractors",
    "long_context",
    "conflict",
    "format",
    "rewrite",
)
SHARE_KINDS = frozenset({"typos", "case", "whitespace", "mildmix"})
"""Kinds whose level is a share of words, 0..1; every other kind counts (sentences, tokens, …)."""
MAX_LEVELS: dict[str, tuple[int, str]] = {
    "distractors": (1_000, "sentences inserted"),
    "long_context": (200_000, "tokens of padding"),
    "conflict": (20, "contradicting lines"),
    "format": (19, "format variants"),
    "rewrite": (1_000, "rule-based rewrites"),
}
"""The highest level of each counting kind, and what it counts: the generators build the noise
in memory for every case (10⁸ tokens of padding take minutes and 400 MB per prompt)."""


MAX_LEVEL_COUNT = 20
"""Levels one kind may list: each is a condition every case is run under, so a list of
thousands (a typo, or a bomb of in-bound levels) multiplies the plan by thousands."""


def check_levels(kind: str, levels: list[float]) -> list[float]:
    """Levels of `kind` are shares ≤ 1, or whole counts/indices up to the kind's maximum; at
    most MAX_LEVEL_COUNT of them."""
    if len(levels) > MAX_LEVEL_COUNT:
        raise ValueError(f"{kind} lists {len(levels):,} levels; at most {MAX_LEVEL_COUNT}")
    if kind in SHARE_KINDS and any(level > 1 for level in levels):
        raise ValueError(f"{kind} levels are shares of words, between 0 and 1")
    if kind in MAX_LEVELS:
        highest, unit = MAX_LEVELS[kind]
        if any(level > highest for level in levels):
            raise ValueError(f"{kind} levels are at most {highest:,} ({unit})")
    if kind not in SHARE_KINDS and any(level != int(level) for level in levels):
        raise ValueError(f"{kind} levels are whole numbers")
    return levels


def _built_checks(owner: BaseModel, specs: list[Any]) -> tuple[Validator, ...]:
    """`specs` built into validators once per `owner` (a Case or a Task), kept in its private
    `_checks`. Read from pydantic's private store directly: `owner._checks` goes through
    BaseModel's __getattr__ (about 5 µs, against 0.1), and this runs once per attempt."""
    private = owner.__pydantic_private__
    assert private is not None
    built: tuple[Validator, ...] | None = private["_checks"]
    if built is None:
        built = private["_checks"] = tuple(build_validator(spec) for spec in specs)
    return built


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


ValidatorEntry = Annotated[
    str | dict[str, Any],
    Field(description="A validator: `name`, `name: value` (short form) or `name: {...}`."),
]


class Case(_Model):
    """One input of a task and the facts its answer must hold."""

    id: Ident
    """Unique within the task; part of every attempt's key."""
    vars: dict[str, Any] = {}
    """Template variables for this case (override the task's `vars`)."""
    expect: dict[str, Any] = {}
    """Expected facts, read by validators through `from_expect`. Noise never touches these."""
    validators: list[ValidatorEntry] = []
    """Validators of this case alone, judged after the task's (same entries as the task's):
    partial credit and per-validator statistics count them as this case's."""

    _checks: tuple[Validator, ...] | None = PrivateAttr(default=None)

    @model_serializer(mode="wrap")
    def _without_empty_validators(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A case with no validators of its own dumps as before they existed: the run identity
        # (a hash of the suites' dump) of a suite that uses none stays what it was.
        data = handler(self)
        if not self.validators and isinstance(data, dict):
            data.pop("validators", None)
        return data

    def checks(self) -> tuple[Validator, ...]:
        """The case's own built validators (built once, like `Task.checks`)."""
        return _built_checks(self, self.validators)


class Perturb(_Model):
    """Noise levels per kind (0 is always the clean prompt and need not be listed)."""

    typos: Levels | None = None
    """Share of words given a keyboard typo, e.g. [0.02, 0.05, 0.1]."""
    case: Levels | None = None
    """Share of words with their letter case changed."""
    whitespace: Levels | None = None
    """Share of word gaps given extra whitespace."""
    mildmix: Levels | None = None
    """HELM's mix (lowercase, contractions, misspellings, extra spaces) at this share."""
    distractors: Levels | None = None
    """Number of irrelevant sentences inserted."""
    long_context: Levels | None = None
    """Tokens of irrelevant padding added around the input."""
    conflict: Levels | None = None
    """1 adds a user line contradicting one constraint."""
    format: Levels | None = None
    """Format variant index, 1..19 (separators after labels, label casing)."""
    rewrite: Levels | None = None
    """Rule-based paraphrase index of the instruction (1, 2, …)."""

    @field_validator(*PERTURB_KINDS)
    @classmethod
    def _levels_fit_their_kind(cls, levels: list[float] | None, info: ValidationInfo) -> Any:
        # A field validator, not a model one: the error points at the kind's own line.
        return levels if levels is None else check_levels(str(info.field_name), levels)


class Task(_Model):
    """A business task: prompt templates, cases and the validators that decide pass/fail."""

    id: Ident
    """Unique within the suite."""
    description: str | None = None
    """What the product needs, for the report."""
    system: str | None = None
    """System-message template (Jinja2, sandboxed)."""
    prompt: str = Field(min_length=1)
    """User-message template (Jinja2, sandboxed); `{{ name }}` reads vars."""
    vars: dict[str, Any] = {}
    """Template variables shared by every case."""
    paraphrases: list[Annotated[str, Field(min_length=1)]] = []
    """Other wordings of `prompt` with the same meaning and the same variables."""
    cases: list[Case] = Field(min_length=1)
    """The inputs, with expectations."""
    validators: list[ValidatorEntry] = []
    """Constraints an answer must all pass; partial credit is the share that pass. At least
    one, unless every case has validators of its own (`cases[].validators`)."""
    guards: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, exclude=True)
    """The validators production runs on every answer (`name`, `name#2` for the second of a
    name); each must read no `expect`. Default: found from what the validators read."""
    # Excluded from dumps: guards judge attempts but never shape them, so the run identity
    # (a hash of the suites' dump) stays the same whether or not a task names them.
    perturb: Perturb | None = None
    """Noise levels to test this task under."""
    target: float | None = Field(default=None, gt=0, le=1)
    """Reliability target for this task (default: the suite's)."""
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Cap on the answer's tokens for this task (default: the model's setting)."""
    max_p95_s: float | None = Field(default=None, gt=0)
    """Latency budget: a model whose p95 latency on this task is above it is not recommended
    (default: the run's `max_p95_s`)."""
    traffic: float | None = Field(default=None, gt=0, allow_inf_nan=False, exclude=True)
    """This feature's share (0.6) or volume (12000 a day) of product requests, for the cost and
    latency of the per-feature mix; tasks without one get the mean of those given (all equal
    when none is). Excluded from dumps like `guards`: it weighs results, never shapes calls."""

    _checks: tuple[Validator, ...] | None = PrivateAttr(default=None)

    def checks(self) -> tuple[Validator, ...]:
        """The built validators (built once; `load_suite` has already proved they build)."""
        return _built_checks(self, self.validators)

    def production_guards(self) -> tuple[Guard, ...]:
        """The task's guards: those its `guards:` names, else every guard its validators hold."""
        if self.guards is not None:
            return named_guards(self.checks(), self.guards)
        return derived_guards(self.checks())

    def checks_for(self, case: Case) -> tuple[Validator, ...]:
        """What judges an attempt of `case`: the task's validators, then the case's own."""
        own = case.checks()
        return self.checks() + own if own else self.checks()

    def guards_for(self, case: Case) -> tuple[Guard, ...]:
        """The production guards of an attempt of `case`: the task's, then every guard among
        the case's own validators (labelled as in its verdicts: `name#2` after a task's)."""
        guards = self.production_guards()
        own = case.checks()
        if not own:
            return guards
        labels = validator_labels(self.checks_for(case))[len(self.checks()) :]
        return guards + derived_guards(own, labels)

    def all_checks(self) -> Iterator[Validator]:
        """Every validator of the task and of its cases (the task's first)."""
        yield from self.checks()
        for case in self.cases:
            yield from case.checks()

    def judges(self) -> list[tuple[str, JudgeValidator]]:
        """The task's judge validators by label (`judge`, `judge#2`, …), then the cases' own
        judges under labels the task's do not use (the first case's where cases share one)."""
        found: dict[str, JudgeValidator] = {}
        for case in (None, *self.cases):
            checks = self.checks() if case is None else self.checks_for(case)
            for label, check in zip(validator_labels(checks), checks, strict=True):
                if isinstance(check, JudgeValidator):
                    found.setdefault(label, check)
        return list(found.items())

    def templates(self) -> Iterator[tuple[Loc, str]]:
        """Every template of the task with its field path."""
        if self.system is not None:
            yield ("system",), self.system
        yield ("prompt",), self.prompt
        for index, text in enumerate(self.paraphrases):
            yield ("paraphrases", index), text

    def case_vars(self, case: Case) -> dict[str, Any]:
        """The variables a template sees for `case`: the task's, overridden by the case's."""
        return {**self.vars, **case.vars}


class Suite(_Model):
    """A file of tasks for one product area, with a reliability target."""

    suite: Ident
    """The suite's name; part of every attempt's key."""
    description: str | None = None
    """What product area this covers, for the report."""
    target: float = Field(gt=0, le=1)
    """Reliability a model must reach (lower confidence bound) to be usable, e.g. 0.95."""
    tasks: list[Task] = Field(min_length=1)
    """The tasks."""

    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file this suite was loaded from, if any."""
        return self._path

    def task_target(self, task: Task) -> float:
        """The task's own target, else the suite's."""
        return task.target if task.target is not None else self.target
