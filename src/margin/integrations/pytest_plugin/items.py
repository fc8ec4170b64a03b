"""The pytest plugin's items, registered by the plugin when `--margin-suite` is given.

The run happens once, on the first item, through margin's public API (`margin.run`: cache,
resume and budget included); the score stage writes results.json, and the items read that
document (and the journal, for an example failure), never the runner's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import margin
from margin.config import ModelSpec, RunSettings, load_models, load_run_settings
from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME, read_journal
from margin.plan import build_plan
from margin.results.document import Results
from margin.results.rows import TaskRow
from margin.results.score import score_run
from margin.stats.numbers import more_cases_text, percent, rate_with_interval
from margin.suite.load import load_suites
from margin.suite.tasks import Suite


@dataclass
class _Run:
    """The inputs loaded at collection, then the run's folder and results once it has run."""

    suites: list[Suite]
    models: list[ModelSpec]
    settings: RunSettings
    folder: Path | None = None
    results: Results | None = None


_RUN = pytest.StashKey[_Run]()


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    paths = config.getoption("margin_suite")
    if not paths:
        return
    models_path = config.getoption("margin_models")
    if not models_path:
        raise pytest.UsageError("--margin-suite needs --margin-models CONFIG")
    try:
        run = _Run(*load_inputs(paths, models_path, config.getoption("margin_config")))
    except UserError as exc:
        raise pytest.UsageError(exc.one_line()) from None
    config.stash[_RUN] = run
    for model in run.models:
        for suite in run.suites:
            for task in suite.tasks:
                items.append(
                    MarginItem.from_parent(
                        session,
                        name=f"margin[{model.name} on {suite.suite}/{task.id}]",
                        model=model.name,
                        suite=suite.suite,
                        task=task.id,
                    )
                )


class MarginItem(pytest.Item):
    """One model × task: crosses → pass, falls short → fail, undecided → skip."""

    def __init__(self, *, model: str, suite: str, task: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model, self.suite, self.task = model, suite, task

    def runtest(self) -> None:
        results = _scored(self.config)
        row = next(
            (t for t in results.tasks
             if (t.model, t.suite, t.task) == (self.model, self.suite, self.task)),
            None,
        )  # fmt: skip
        if row is None:
            pytest.skip("no judged attempts for this model and task")
        evidence = rate_with_interval(row.passes, row.n, row.low, row.high)
        if row.verdict == "crosses":
            return
        if row.verdict == "undecided":
            more = more_cases_text(row.more_cases)
            pytest.skip(f"undecided: {evidence} straddles the target {row.target:g}; {more}")
        raise MarginFailure(self._reasons(results, row, evidence))

    def _reasons(self, results: Any, row: TaskRow, evidence: str) -> str:
        lines = [
            f"{self.model} falls short on {self.suite}/{self.task}: {evidence} < {row.target:g}"
        ]
        checks = sorted(
            (v for v in results.validators
             if (v.model, v.suite, v.task) == (self.model, self.suite, self.task)),
            key=lambda v: v.rate if v.rate is not None else 1.0,
        )  # fmt: skip
        for v in checks[:3]:
            lines.append(f"  validator {v.validator}: {v.passes}/{v.n} {percent(v.rate)}")
        conditions = sorted(
            (c for c in results.conditions
             if (c.model, c.suite, c.task) == (self.model, self.suite, self.task) and c.n),
            key=lambda c: c.rate if c.rate is not None else 1.0,
        )  # fmt: skip
        if conditions:
            worst = conditions[0]
            rate = f"{worst.passes}/{worst.n} {percent(worst.rate)}"
            lines.append(f"  worst condition {worst.condition}: {rate}")
        example = _example_failure(self.config, self.model, self.suite, self.task)
        if example:
            lines.append(f"  example: {example}")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MarginFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return Path(self.suite), 0, self.name


class MarginFailure(Exception):
    """A model × task that falls short of its target."""


def load_inputs(
    suites: list[str], models_path: str, config_paths: list[str]
) -> tuple[list[Suite], list[ModelSpec], RunSettings]:
    """The suites, every model of the config and the run settings (its `run:` section, then
    each config file), as `margin run` reads them; planned once, so that what a run would refuse
    (a judge naming no model, …) is a usage error at collection."""
    loaded = load_suites(tuple(suites))
    models = load_models(models_path)
    judges = load_models(models_path)  # a judge may be any model of the config
    settings = load_run_settings([models_path, *config_paths])
    build_plan(loaded, models, settings, judges)
    return loaded, models, settings


def _scored(config: pytest.Config) -> Results:
    """The run's results: run once (through the public API), then scored into results.json."""
    run = config.stash[_RUN]
    if run.results is None:
        out = config.getoption("margin_run")
        result = margin.run(run.suites, run.models, run.settings, out=Path(out) if out else None)
        run.folder = result.folder
        run.results = score_run(result.folder)
    return run.results


def _example_failure(config: pytest.Config, model: str, suite: str, task: str) -> str | None:
    folder = config.stash[_RUN].folder
    if folder is None:
        return None
    for record in read_journal(Path(folder) / JOURNAL_NAME):
        if (record.model, record.suite, record.task) == (
            model,
            suite,
            task,
        ) and record.passed is False:
            failed = "; ".join(
                f"{v.validator}: {v.reason}" for v in record.verdicts if not v.passed
            )
            answer = (record.output or "")[:200]
            return f"case {record.case} ({record.variant}) answered {answer!r} — {failed}"
    return None
