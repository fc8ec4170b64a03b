"""margin as a pytest plugin: each model × task of a suite becomes a test item.

    pytest --margin-suite suites/x.yaml --margin-models configs/y.yaml [--margin-run DIR]

An item passes when the model crosses the task's target, fails with the reasons (the
constraint that breaks first, the worst condition, an example answer) when it falls short, and
is skipped with the reason when the evidence is undecided. The run happens once, on the first
item, through margin's runner (cache, resume and budget included); the items read the scored
run directory (results), never the runner's objects. Without `--margin-suite` the plugin does
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_SCORES = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("margin", "margin: LLM reliability checks")
    group.addoption("--margin-suite", action="append", default=[], metavar="PATH",
                    help="A margin suite file or folder (repeatable).")  # fmt: skip
    group.addoption("--margin-models", metavar="CONFIG", help="The model set (a config file).")
    group.addoption("--margin-config", action="append", default=[], metavar="FILE",
                    help="Run settings (repeatable; later wins).")  # fmt: skip
    group.addoption("--margin-run", metavar="DIR",
                    help="Run directory (default reports/run-<id>); resumed if there.")  # fmt: skip


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    suites = config.getoption("margin_suite")
    if not suites:
        return
    models_path = config.getoption("margin_models")
    if not models_path:
        raise pytest.UsageError("--margin-suite needs --margin-models CONFIG")
    from margin.cli.inputs import load_inputs
    from margin.errors import UserError

    try:
        inputs = load_inputs(
            tuple(suites), models_path, (), tuple(config.getoption("margin_config"))
        )
    except UserError as exc:
        raise pytest.UsageError(exc.one_line()) from None
    config.stash[_SCORES] = {"inputs": inputs}
    for model in inputs.models:
        for suite in inputs.suites:
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
        from margin.stats.numbers import rate_with_interval

        evidence = rate_with_interval(row.passes, row.n, row.low, row.high)
        if row.verdict == "crosses":
            return
        if row.verdict == "undecided":
            more = (
                f"; about {int(row.more_attempts):,} more attempts would decide it"
                if row.more_attempts is not None
                else "; its rate sits on the target"
            )
            pytest.skip(f"undecided: {evidence} straddles the target {row.target:g}{more}")
        raise MarginFailure(self._reasons(results, row, evidence))

    def _reasons(self, results: Any, row: Any, evidence: str) -> str:
        from margin.stats.numbers import percent

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


def _scored(config: pytest.Config) -> Any:
    state = config.stash[_SCORES]
    if "results" not in state:
        import margin
        from margin.report import score_and_write
        from margin.results.document import read_results

        inputs = state["inputs"]
        run_dir = config.getoption("margin_run")
        result = margin.run(
            inputs.suites, inputs.models, inputs.settings,
            out=Path(run_dir) if run_dir else None,
        )  # fmt: skip
        path, _ = score_and_write(result.folder)
        state["folder"] = result.folder
        state["results"] = read_results(path)
    return state["results"]


def _example_failure(config: pytest.Config, model: str, suite: str, task: str) -> str | None:
    from margin.journal.records import read_journal

    folder = config.stash[_SCORES].get("folder")
    if folder is None:
        return None
    for record in read_journal(Path(folder) / "journal.jsonl"):
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
