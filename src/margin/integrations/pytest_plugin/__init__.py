"""margin as a pytest plugin: each model × task of a suite becomes a test item.

    pytest --margin-suite suites/x.yaml --margin-models configs/y.yaml [--margin-run DIR]

An item passes when the model crosses the task's target, fails with the reasons (the
constraint that breaks first, the worst condition, an example answer) when it falls short, and
is skipped with the reason when the evidence is undecided. Without `--margin-suite` the plugin
does nothing.

pytest loads this module (an entry point) in every session of every project where margin is
installed, so it only adds the options: with `--margin-suite` it registers `items.py` — the
suites, the run, the items — through pytest's plugin manager, and only then does the rest of
margin load.
"""

from __future__ import annotations

import pytest

ITEMS = "margin.integrations.pytest_plugin.items"
"""The plugin that collects and runs the items, registered only with `--margin-suite`."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("margin", "margin: LLM reliability checks")
    group.addoption("--margin-suite", action="append", default=[], metavar="PATH",
                    help="A margin suite file or folder (repeatable).")  # fmt: skip
    group.addoption("--margin-models", metavar="CONFIG", help="The model set (a config file).")
    group.addoption("--margin-config", action="append", default=[], metavar="FILE",
                    help="Run settings (repeatable; later wins).")  # fmt: skip
    group.addoption("--margin-run", metavar="DIR",
                    help="Run directory (default reports/run-<id>); resumed if there.")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("margin_suite"):
        config.pluginmanager.import_plugin(ITEMS)
