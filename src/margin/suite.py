"""Suites: load and validate YAML into typed Suite → Task → Case objects.

Shape errors come from pydantic (`extra="forbid"`), meaning errors from `check_suite`: duplicate
ids, templates that name missing variables or try to escape the sandbox, validators that do not
build, expectations a validator needs but a case lacks. Every error names file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from margin.errors import SuiteError
from margin.source import Loc, Source, read_yaml, validate_model
from margin.templates import RenderBudget, TemplateProblem, render, template_variables
from margin.validators import Validator, ValidatorSpecError, build_validator, registry
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Case(_Model):
    """One input of a task and the facts its answer must hold."""

    id: Ident
    """Unique within the task; part of every attempt's key."""
    vars: dict[str, Any] = {}
    """Template variables for this case (override the task's `vars`)."""
    expect: dict[str, Any] = {}
    """Expected facts, read by validators through `from_expect`. Noise never touches these."""


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


ValidatorEntry = Annotated[
    str | dict[str, Any],
    Field(description="A validator: `name`, `name: value` (short form) or `name: {...}`."),
]


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
    validators: list[ValidatorEntry] = Field(min_length=1)
    """Constraints an answer must all pass; partial credit is the share that pass."""
    perturb: Perturb | None = None
    """Noise levels to test this task under."""
    target: float | None = Field(default=None, gt=0, le=1)
    """Reliability target for this task (default: the suite's)."""
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Cap on the answer's tokens for this task (default: the model's setting)."""
    max_p95_s: float | None = Field(default=None, gt=0)
    """Latency budget: a model whose p95 latency on this task is above it is not recommended
    (default: the run's `max_p95_s`)."""

    _checks: tuple[Validator, ...] | None = PrivateAttr(default=None)

    def checks(self) -> tuple[Validator, ...]:
        """The built validators (built once; `load_suite` has already proved they build)."""
        # Read from pydantic's private store directly: `self._checks` goes through BaseModel's
        # __getattr__ (about 5 µs, against 0.1), and this runs once per attempt.
        private = self.__pydantic_private__
        assert private is not None
        built: tuple[Validator, ...] | None = private["_checks"]
        if built is None:
            built = self._checks = tuple(build_validator(spec) for spec in self.validators)
        return built

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


MAX_SUITE_FILES = 2000
"""Most suite files one command loads (a folder of them is expanded first)."""
LOAD_RENDER_SECONDS = 30.0
"""All the template checks of one command's suites share this much time."""


def load_suite(path: Path | str, budget: RenderBudget | None = None) -> Suite:
    """Read, validate and check one suite file; raise SuiteError naming file, line and field.

    `budget` is time shared with other suites loaded by the same command, if any.
    """
    source = read_yaml(Path(path), SuiteError)
    if not isinstance(source.data, dict):
        raise source.error("a suite is a mapping with keys suite, target, tasks", (), SuiteError)
    suite = validate_model(Suite, source, SuiteError)
    try:
        check_suite(suite, source, budget)
    except TemplateProblem as exc:  # the shared budget ran out
        raise SuiteError(str(exc), path=path) from None
    from margin.lock import apply_lock  # the lock builds on this module

    suite = apply_lock(suite, Path(path))
    suite._path = Path(path)
    return suite


def suite_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand directories to their `*.yaml`/`*.yml` files (sorted; lock files excluded)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            found = [p for p in found if not p.name.endswith((".lock.yaml", ".lock.yml"))]
            if not found:
                raise SuiteError("no *.yaml suites in this folder", path=path)
            files.extend(found)
        else:
            files.append(path)
        if len(files) > MAX_SUITE_FILES:
            raise SuiteError(
                f"more than {MAX_SUITE_FILES:,} suite files in one command; split the run",
                path=path,
            )
    return files


def load_suites(paths: Iterable[Path | str]) -> list[Suite]:
    """Load every suite named (folders expand); suite names must be unique."""
    suites: list[Suite] = []
    seen: dict[str, Path] = {}
    budget = RenderBudget(LOAD_RENDER_SECONDS)
    for path in suite_files(paths):
        suite = load_suite(path, budget)
        check_unique_name(suite, path, seen)
        suites.append(suite)
    return suites


def check_unique_name(suite: Suite, path: Path, seen: dict[str, Path]) -> None:
    """Suite names key every attempt: refuse one already used by a file in `seen`."""
    if suite.suite in seen:
        raise SuiteError(
            f"suite name {suite.suite!r} is also used by {seen[suite.suite]}",
            path=path,
            field="suite",
        )
    seen[suite.suite] = path


def check_suite(suite: Suite, source: Source, shared: RenderBudget | None = None) -> None:
    """Meaning checks pydantic cannot do; raises SuiteError at the first problem."""
    _unique((t.id for t in suite.tasks), ("tasks",), "id", "task", source)
    budget = RenderBudget()
    if shared is not None and shared.remaining() < budget.seconds:
        budget = shared  # less is left of the command's time than a suite's own share
    for t_index, task in enumerate(suite.tasks):
        here: Loc = ("tasks", t_index)
        _unique((c.id for c in task.cases), (*here, "cases"), "id", "case", source)
        _check_validators(task, here, source)
        _check_templates(task, here, source, budget)


def _unique(ids: Iterable[str], loc: Loc, key: str, what: str, source: Source) -> None:
    seen: set[str] = set()
    for index, ident in enumerate(ids):
        if ident in seen:
            raise source.error(f"duplicate {what} id {ident!r}", (*loc, index, key), SuiteError)
        seen.add(ident)


def _check_validators(task: Task, here: Loc, source: Source) -> None:
    built = []
    for v_index, spec in enumerate(task.validators):
        loc = (*here, "validators", v_index)
        try:
            validator = build_validator(spec)
        except ValidatorSpecError as exc:
            raise source.error(str(exc), (*loc, *exc.loc), SuiteError) from None
        for c_index, case in enumerate(task.cases):
            problem = validator.case_problem(case.expect)
            if problem:
                raise source.error(
                    f"case {case.id!r}: {problem}", (*here, "cases", c_index), SuiteError
                )
        if isinstance(validator, JudgeValidator):
            _check_judge(task, validator, loc, source)
        built.append(validator)
    task._checks = tuple(built)


JUDGE_NAMES = frozenset({"prompt", "output", "expect", "first", "second"})
"""What a judge's rubric may name besides the case's variables."""


def _check_judge(task: Task, judge: JudgeValidator, loc: Loc, source: Source) -> None:
    """A judge's rubric and reference must render for every case, or the run would stop."""
    for field, text in (("rubric", judge.rubric), ("reference", judge.reference)):
        if text is None:
            continue
        where = (*loc, "judge", field)
        used = _variables(text, where, source)
        for case in task.cases:
            variables = task.case_vars(case)
            missing = sorted(used - set(variables) - JUDGE_NAMES)
            if missing:
                raise source.error(
                    f"the judge's {field} uses {{{{ {missing[0]} }}}}, which case {case.id!r}"
                    " does not define (it may use the case's vars, prompt, output, expect,"
                    " first and second)",
                    where,
                    SuiteError,
                )
            sample = {**variables, "prompt": "", "output": "", "first": "", "second": ""}
            try:
                render(text, {**sample, "expect": dict(case.expect)})
            except TemplateProblem as exc:
                raise source.error(f"case {case.id!r}: {exc}", where, SuiteError) from None


def _check_templates(task: Task, here: Loc, source: Source, budget: RenderBudget) -> None:
    prompt_vars = _variables(task.prompt, (*here, "prompt"), source)
    for loc, text in task.templates():
        used = _variables(text, (*here, *loc), source)
        if loc[0] == "paraphrases":
            dropped = sorted(prompt_vars - used)
            if dropped:
                raise source.error(
                    f"paraphrase drops {{{{ {dropped[0]} }}}}, which the prompt uses",
                    (*here, *loc),
                    SuiteError,
                )
        for c_index, case in enumerate(task.cases):
            variables = task.case_vars(case)
            missing = sorted(used - set(variables))
            if missing:
                raise source.error(
                    f"template uses {{{{ {missing[0]} }}}}, which case {case.id!r} does not "
                    "define (add it to the case's or the task's vars)",
                    (*here, *loc) if len(task.cases) > 1 else (*here, "cases", c_index),
                    SuiteError,
                )
            try:
                render(text, variables, budget)
            except TemplateProblem as exc:
                raise source.error(f"case {case.id!r}: {exc}", (*here, *loc), SuiteError) from None


def _variables(text: str, loc: Loc, source: Source) -> frozenset[str]:
    try:
        return template_variables(text)
    except TemplateProblem as exc:
        where = f" (template line {exc.lineno})" if exc.lineno and "\n" in text else ""
        raise source.error(f"{exc}{where}", loc, SuiteError) from None


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema of a suite file, validators included (built-ins and plugins)."""
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "margin suite"
    entries: list[dict[str, Any]] = []
    for name, cls in sorted(registry().items()):
        long_schema = cls.model_json_schema()
        forms: list[dict[str, Any]] = [long_schema]
        if cls.short is not None:
            forms.insert(0, long_schema["properties"][cls.short])
        if not long_schema.get("required"):
            entries.append({"const": name, "description": cls.__doc__ or name})
        doc = (cls.__doc__ or "").strip().splitlines()
        entries.append(
            {
                "type": "object",
                "description": doc[0] if doc else name,
                "properties": {name: {"anyOf": forms}},
                "required": [name],
                "additionalProperties": False,
            }
        )
    task = schema["$defs"]["Task"]
    task["properties"]["validators"]["items"] = {"anyOf": entries}
    json.dumps(schema)  # the schema must be serialisable
    return schema
