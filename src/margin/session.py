"""A whole run: suites and models in, a run directory with its journal out.

This is what `margin run` does and what `margin.run` offers from Python: take the run
directory's lock, write its resolved config, skip what the journal already holds (or, with
`retry_errors`, what ended in an infra error), count what it already spent against the cap,
and execute the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from margin.cache import default_cache_dir
from margin.config import ModelSpec, RunSettings
from margin.journal import JOURNAL_NAME, Journal, journal_state
from margin.plan import Plan, build_plan
from margin.rundir import default_run_dir, prepare_run_dir, run_dir_lock
from margin.runner import Progress, RunStats
from margin.suite import Suite

NO_CACHE = Path("")
"""Pass as `cache_dir` to neither read nor write the answer cache."""


@dataclass(frozen=True)
class RunResult:
    """What a run did: where it wrote, its totals, and the keys its plan holds."""

    folder: Path
    stats: RunStats
    plan: Plan

    @property
    def journal(self) -> Path:
        """The run's journal file."""
        return self.folder / JOURNAL_NAME


def run(
    suites: list[Suite],
    models: list[ModelSpec],
    settings: RunSettings,
    *,
    out: Path | None = None,
    cache_dir: Path | None = None,
    read_cache: bool = True,
    retry_errors: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Plan and run `suites` on `models` into a run directory (default `reports/run-<id>`).

    Resumable: attempts already in the journal are not run again. `cache_dir` defaults to
    `$MARGIN_CACHE_DIR` (else the user cache folder); NO_CACHE turns the cache off.
    """
    from margin.workers import execute

    plan = build_plan(suites, models, settings)
    folder = out if out is not None else default_run_dir(suites, models, settings)
    with run_dir_lock(folder):
        prepare_run_dir(folder, suites, models, settings)
        journal_path = folder / JOURNAL_NAME
        before = journal_state(journal_path)
        done = before.finished(retry_errors)
        pending = [a for a in plan.attempts if str(a.key) not in done]
        cache = default_cache_dir() if cache_dir is None else cache_dir
        with Journal(journal_path) as journal:
            stats = execute(
                pending,
                settings,
                journal,
                cache_dir=None if cache == NO_CACHE else cache,
                read_cache=read_cache,
                resumed=len(plan) - len(pending),
                spent=before.spent_usd,
                progress=progress,
            )
    return RunResult(folder, stats, plan)
