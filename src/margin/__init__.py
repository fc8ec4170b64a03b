"""margin: which model should this feature ship on?

The supported Python API. Names load on first use, so `import margin` (and `margin --help`)
stays fast: nothing heavy is imported until it is needed.

    import margin
    suites = margin.load_suites(["suites/"])
    models = margin.load_models("configs/local.yaml")
    settings = margin.load_run_settings(["configs/local.yaml"])
    result = margin.run(suites, models, settings)
    for record in margin.read_journal(result.journal): ...
    scores = margin.score(result.folder)       # tables, rank bands, the recommendation
    print(scores.recommendation.model)
    frames = margin.load_results(result.folder)  # pandas: models, tasks, conditions, …
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "AttemptRecord",
    "ConfigError",
    "ModelSpec",
    "Plan",
    "ProviderError",
    "RunResult",
    "RunSettings",
    "Suite",
    "SuiteError",
    "UserError",
    "Validator",
    "Verdict",
    "build_plan",
    "latest_records",
    "load_config",
    "load_models",
    "load_results",
    "load_run_settings",
    "load_suite",
    "load_suites",
    "read_journal",
    "register_validator",
    "run",
    "score",
]

_WHERE = {
    "AttemptRecord": "margin.journal.records",
    "ConfigError": "margin.errors",
    "ModelSpec": "margin.config",
    "Plan": "margin.plan",
    "ProviderError": "margin.errors",
    "RunResult": "margin.execute.session",
    "RunSettings": "margin.config",
    "Suite": "margin.suite.tasks",
    "SuiteError": "margin.errors",
    "UserError": "margin.errors",
    "Validator": "margin.validators",
    "Verdict": "margin.validators",
    "build_plan": "margin.plan",
    "latest_records": "margin.journal.records",
    "load_config": "margin.config",
    "load_models": "margin.config",
    "load_results": "margin.results.frames",
    "load_run_settings": "margin.config",
    "load_suite": "margin.suite.load",
    "load_suites": "margin.suite.load",
    "read_journal": "margin.journal.records",
    "register_validator": "margin.validators",
    "run": "margin.execute.session",
    "score": "margin.decide.scores",
}
_RENAMED = {"register_validator": "register", "score": "score_run"}

if TYPE_CHECKING:
    from margin.config import ModelSpec, RunSettings, load_config, load_models, load_run_settings
    from margin.decide.scores import score_run as score
    from margin.errors import ConfigError, ProviderError, SuiteError, UserError
    from margin.execute.session import RunResult, run
    from margin.journal.records import AttemptRecord, latest_records, read_journal
    from margin.plan import Plan, build_plan
    from margin.results.frames import load_results
    from margin.suite.load import load_suite, load_suites
    from margin.suite.tasks import Suite
    from margin.validators import Validator, Verdict
    from margin.validators import register as register_validator


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'margin' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
