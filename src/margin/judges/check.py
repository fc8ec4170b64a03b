"""`margin judge-check`: how far a `judge` validator agrees with human labels.

The labels file holds examples written and labelled by people — the case's variables, an
output, and the human verdict. The judge grades each output through margin's runner (cache,
retries, budget as in a run); the check reports agreement, Cohen's κ with its 95% interval
(statsmodels), the false-pass rate (the judge passes what people failed) and the false-fail
rate. The result (a `JudgeCheck`, defined in `margin.judges.trust` where runs read it) is
written beside the labels (`NAME.check.json`); a run whose judge validator names those labels
copies it into its run directory, and a judge whose κ is below `min_kappa` — or that was never
checked — is flagged in the report and cannot decide a gate.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from statsmodels.stats.inter_rater import cohens_kappa

from margin.config import ModelSpec, RunSettings
from margin.errors import UserError
from margin.execute.cache import AnswerCache
from margin.execute.runner import Runner
from margin.journal.records import AttemptRecord
from margin.judges.trust import JudgeCheck, rubric_sha
from margin.plan import Attempt, AttemptKey, Variant, derive_seed, render_messages
from margin.suite.source import read_yaml, validate_model
from margin.suite.tasks import Case, Suite, Task
from margin.validators import Verdict
from margin.validators.judge import JudgeValidator


class LabelledExample(BaseModel):
    """One output a person judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    vars: dict[str, object] = {}
    """The case's variables (they fill the task's prompt and the rubric)."""
    output: str
    """The answer to be judged."""
    human: Literal["pass", "fail"]
    """The person's verdict."""
    note: str | None = None
    """Why, for the next person to read it."""


class Labels(BaseModel):
    """A labels file: which task's judge it checks, and the examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    task: str
    validator: int = Field(default=1, ge=1)
    """Which judge validator of the task (1 = its first)."""
    examples: list[LabelledExample] = Field(min_length=2)


def judge_label(task: Task, position: int) -> tuple[JudgeValidator, str]:
    """The task's `position`-th judge validator (1-based; its cases' own judges after the
    task's) and its verdict label."""
    judges = task.judges()
    if not judges:
        raise UserError(f"task {task.id!r} has no judge validator")
    if position > len(judges):
        raise UserError(f"task {task.id!r} has {len(judges)} judge validator(s), not {position}")
    label, judge = judges[position - 1]
    return judge, label


def load_labels(path: Path) -> Labels:
    """The labels file; a malformed one is a UserError naming file, line and field."""
    labels = validate_model(Labels, read_yaml(path))
    ids = [e.id for e in labels.examples]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise UserError(f"example id {twice[0]!r} is used twice", path=path)
    return labels


def agreement_table(human: list[bool], judge: list[bool]) -> dict[str, object]:
    """Agreement, Cohen's κ (statsmodels, asymptotic 95% interval), false-pass and false-fail
    rates of paired pass/fail labels."""
    h, j = np.asarray(human, dtype=bool), np.asarray(judge, dtype=bool)
    matrix = [
        [int((h & j).sum()), int((h & ~j).sum())],
        [int((~h & j).sum()), int((~h & ~j).sum())],
    ]
    n = len(h)
    out: dict[str, object] = {"matrix": matrix, "scored": n}
    out["agreement"] = float((h == j).mean()) if n else None
    out["false_pass_rate"] = matrix[1][0] / (~h).sum() if (~h).sum() else None
    out["false_fail_rate"] = matrix[0][1] / h.sum() if h.sum() else None
    kappa = low = high = None
    expected = ((h.mean() * j.mean()) + ((1 - h.mean()) * (1 - j.mean()))) if n else 1.0
    if n and expected < 1:  # κ is undefined when both raters say one thing throughout
        result = cohens_kappa(np.asarray(matrix, dtype=np.float64))
        kappa, low, high = float(result.kappa), float(result.kappa_low), float(result.kappa_upp)
    out.update(kappa=kappa, kappa_low=low, kappa_high=high)
    for key in ("false_pass_rate", "false_fail_rate"):
        value = out[key]
        out[key] = None if value is None else float(value)  # type: ignore[arg-type]
    return out


class _Discard:
    """A journal that keeps nothing: a check's verdicts are summarised, not recorded."""

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        return None


def run_check(
    suite: Suite,
    labels: Labels,
    judges: list[ModelSpec],
    settings: RunSettings,
    judge_name: str | None = None,
    cache_dir: Path | None = None,
) -> JudgeCheck:
    """Grade every labelled example with the task's judge and compare with the people."""
    task = next((t for t in suite.tasks if t.id == labels.task), None)
    if task is None:
        raise UserError(f"suite {suite.suite!r} has no task {labels.task!r}")
    check, label = judge_label(task, labels.validator)
    name = judge_name or check.model or settings.judge.model
    spec = next((m for m in judges if m.name == name), None)
    if spec is None:
        known = ", ".join(m.name for m in judges)
        raise UserError(f"judge {name!r} is not in the models config ({known})")
    if judge_name is not None:
        check = check.model_copy(update={"model": judge_name})

    items = []
    for example in labels.examples:
        case = Case(id=example.id, vars=dict(example.vars))
        key = AttemptKey(spec.name, suite.suite, task.id, example.id, "p0", 0)
        attempt = Attempt(
            key=key, model=spec, suite=suite, task=task, case=case, variant=Variant(0),
            messages=render_messages(task, case, Variant(0)), seed=derive_seed(settings.seed, key),
            max_tokens=check.max_tokens, judges=(spec,),
        )  # fmt: skip
        items.append((attempt, example.output))
    cache = AnswerCache(cache_dir) if cache_dir is not None else None
    try:
        runner = Runner(settings, _Discard(), cache)
        verdicts = asyncio.run(runner.judge_only(check, items))
    finally:
        if cache is not None:
            cache.close()
    return _summarise(suite, task, label, check, spec, labels, verdicts)


def _summarise(
    suite: Suite,
    task: Task,
    label: str,
    check: JudgeValidator,
    spec: ModelSpec,
    labels: Labels,
    verdicts: list[Verdict],
) -> JudgeCheck:
    scored = [(e, v) for e, v in zip(labels.examples, verdicts, strict=True) if not v.unscored]
    table = agreement_table([e.human == "pass" for e, _ in scored], [v.passed for _, v in scored])
    agreements = [  # self-agreement means something only over repeated answers
        v.judge.agreement
        for v in verdicts
        if v.judge and v.judge.agreement is not None and len(v.judge.answers) > 1
    ]
    return JudgeCheck(
        suite=suite.suite,
        task=task.id,
        validator=label,
        judge=spec.name,
        judge_model=spec.model,
        rubric_sha256=rubric_sha(check),
        examples=len(labels.examples),
        unscored=len(labels.examples) - len(scored),
        self_agreement=float(np.mean(agreements)) if agreements else None,
        disagreements=[e.id for e, v in scored if (e.human == "pass") != v.passed],
        **table,
    )
