"""What `plan` and `run` both read: suites, the model set, run settings, and the plan of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from margin.config import ModelSpec, RunSettings, load_models, load_run_settings
from margin.decide.policy_spec import parse_policy
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
    settings = _policies_of_the_run(settings, models, judges)
    plan = build_plan(loaded, models, planned_settings(settings), judges)
    return Inputs(loaded, models, settings, plan, judges)


def _policies_of_the_run(
    settings: RunSettings, models: list[ModelSpec], configured: list[ModelSpec]
) -> RunSettings:
    """The settings with only the configured policies whose every model is in the run: one
    that names a model the config lacks is refused now, before any call; one whose model
    `--only` left out is set aside with a note (nothing could estimate it)."""
    names = {m.name for m in models}
    kept = []
    for text in settings.policies:
        policy = parse_policy(text, {m.name for m in configured})
        missing = [model for model, _ in policy.steps if model not in names]
        if missing:
            click.echo(
                f"note: policy {policy.name} set aside: {missing[0]} is not in this run", err=True
            )
        else:
            kept.append(text)
    return settings if kept == settings.policies else settings.model_copy(update={"policies": kept})
