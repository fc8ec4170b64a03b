"""Shared option helpers: every option has an environment variable, shown in --help."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

F = Callable[..., Any]


def option(*decls: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option read from `--flag` or the environment variable `env`."""
    return click.option(*decls, envvar=env, show_envvar=True, **kwargs)


def suites_argument() -> Callable[[F], F]:
    """SUITE... : suite files or folders of them."""
    return click.argument(
        "suites",
        nargs=-1,
        required=True,
        type=click.Path(path_type=str),
        envvar="MARGIN_SUITES",
    )


def models_option(required: bool = True) -> Callable[[F], F]:
    """--models CONFIG: the model set."""
    return option(
        "--models",
        "models_path",
        env="MARGIN_MODELS",
        required=required,
        metavar="CONFIG",
        help="Model set: a config file with a `models:` list.",
    )


def only_option() -> Callable[[F], F]:
    """--only NAME: a subset of the model set."""
    return option(
        "--only",
        "only",
        env="MARGIN_ONLY",
        multiple=True,
        metavar="NAME",
        help="Run only these models of the set (repeatable).",
    )


def config_option() -> Callable[[F], F]:
    """--config FILE: run settings."""
    return option(
        "--config",
        "config_paths",
        env="MARGIN_CONFIG",
        multiple=True,
        metavar="FILE",
        help="Run settings: a config file with a `run:` section (repeatable; later wins).",
    )


def run_dir_argument() -> Callable[[F], F]:
    """RUN_DIR: a run directory `margin run` wrote."""
    return click.argument("run_dir", type=click.Path(path_type=Path), envvar="MARGIN_RUN_DIR")


def adaptive_options(help_text: str) -> Callable[[F], F]:
    """--adaptive and --max-repeats, shared by `run` and `plan`."""

    def decorate(function: F) -> F:
        function = option(
            "--max-repeats",
            env="MARGIN_MAX_REPEATS",
            type=click.IntRange(1, 1000),
            help="With --adaptive: the repeat cap.",
        )(function)
        return option(
            "--adaptive", env="MARGIN_ADAPTIVE", is_flag=True, default=None, help=help_text
        )(function)

    return decorate
