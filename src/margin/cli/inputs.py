"""What `plan` and `run` both read: suites, the model set, run settings, and the plan of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from margin.config import ModelSpec, RunSettings, load_models, load_run_settings
from margin.execute.rounds import planned_settings
from margin.plan import Plan, build_plan
from margin.suite.load import load_suites
from margin.suite.tasks import Suite


@dataclass(frozen=True)
class Inputs:
    """The loaded inputs of a run and its plan."""

    suites: list[Suite]
    models: list[ModelSpec]
    settings: RunSettings
    plan: Plan
    """The plan of them (an adaptive run's up to its cap of repeats: `plan.settings`)."""
    judges: list[ModelSpec]
    """Every model of the config: what a `judge` validator may name."""


def load_inputs(
    suites: tuple[str, ...],
    models_path: str,
    only: tuple[str, ...],
    config_paths: tuple[str, ...],
    **overrides: Any,
) -> Inputs:
    """Suites, the models named by `only` (all if empty), and run settings — from the models
    file's `run:` section, then each --config file, then non-None flag `overrides` — planned."""
    loaded = load_suites(suites)
    models = load_models(models_path, only)
    judges = load_models(models_path)  # a judge may be any model of the config
    settings = load_run_settings([models_path, *config_paths], **overrides)
    plan = build_plan(loaded, models, planned_settings(settings), judges)
    return Inputs(loaded, models, settings, plan, judges)
