"""Load suites: read and validate YAML into typed Suite → Task → Case objects.

Shape errors come from pydantic (`extra="forbid"`), meaning errors from `check_suite`: duplicate
ids, templates that name missing variables or try to escape the sandbox, validators that do not
build, expectations a validator needs but a case lacks. Every error names file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from margin.errors import SuiteError
from margin.suite.lock import apply_lock
from margin.suite.source import Loc, Source, read_yaml, validate_model
from margin.suite.tasks import Case, Suite, Task
from margin.suite.templates import RenderBudget, TemplateProblem, render, template_variables
from margin.validators import Validator, ValidatorSpecError, build_validator, registry
from margin.validators.guards import guard_problem
from margin.validators.judge import JudgeValidator

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
        _check_guards(task, here, source)
        _check_templates(task, here, source, budget)


def _unique(ids: Iterable[str], loc: Loc, key: str, what: str, source: Source) -> None:
    seen: set[str] = set()
    for index, ident in enumerate(ids):
        if ident in seen:
            raise source.error(f"duplicate {what} id {ident!r}", (*loc, index, key), SuiteError)
        seen.add(ident)


def _check_validators(task: Task, here: Loc, source: Source) -> None:
    """Every validator builds and finds what it reads in each case it judges: the task's in
    every case, a case's own in that case."""
    task._checks = _built(task, task.validators, task.cases, (*here, "validators"), source)
    for c_index, case in enumerate(task.cases):
        where = (*here, "cases", c_index)
        case._checks = _built(task, case.validators, [case], (*where, "validators"), source)
        if not task.validators and not case.validators:
            loc = (*here, "validators") if "validators" in task.model_fields_set else where
            raise source.error(
                f"at least 1 item is needed, on the task or on every case (case"
                f" {case.id!r} has no validators)",
                loc,
                SuiteError,
            )


def _built(
    task: Task, specs: list[Any], cases: list[Case], loc: Loc, source: Source
) -> tuple[Validator, ...]:
    """The validators `specs` at `loc`, built and checked against `cases`."""
    built = []
    for v_index, spec in enumerate(specs):
        where = (*loc, v_index)
        try:
            validator = build_validator(spec)
        except ValidatorSpecError as exc:
            raise source.error(str(exc), (*where, *exc.loc), SuiteError) from None
        for case in cases:
            problem = validator.case_problem(case.expect)
            if problem:
                c_index = task.cases.index(case)
                raise source.error(
                    f"case {case.id!r}: {problem}", (*loc[:2], "cases", c_index), SuiteError
                )
        if isinstance(validator, JudgeValidator):
            _check_judge(task, validator, where, source, cases)
        built.append(validator)
    return tuple(built)


def _check_guards(task: Task, here: Loc, source: Source) -> None:
    """A task's `guards:` names its own validators, none reading `expect`."""
    for g_index, label in enumerate(task.guards or ()):
        problem = guard_problem(task.checks(), label)
        if problem:
            raise source.error(problem, (*here, "guards", g_index), SuiteError)


JUDGE_NAMES = frozenset({"prompt", "output", "expect", "first", "second"})
"""What a judge's rubric may name besides the case's variables."""


def _check_judge(
    task: Task, judge: JudgeValidator, loc: Loc, source: Source, cases: list[Case]
) -> None:
    """A judge's rubric and reference must render for every case it judges, or the run would
    stop."""
    for field, text in (("rubric", judge.rubric), ("reference", judge.reference)):
        if text is None:
            continue
        where = (*loc, "judge", field)
        used = _variables(text, where, source)
        for case in cases:
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
    for model in ("Task", "Case"):
        schema["$defs"][model]["properties"]["validators"]["items"] = {"anyOf": entries}
    json.dumps(schema)  # the schema must be serialisable
    return schema
