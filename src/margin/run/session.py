"""A whole run: suites and models in, a run directory with its journal out.

This is what `margin run` does and what `margin.run` offers from Python: take the run
directory's lock, write its resolved config, skip what the journal already holds (or, with
`retry_errors`, what ended in an infra error), count what it already spent against the cap,
and execute the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from margin.config import ModelSpec, RunSettings, default_cache_dir
from margin.decide.policies import Policy
from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME, Journal, journal_state
from margin.journal.rundir import default_run_dir, prepare_run_dir, run_dir_lock
from margin.plan import Attempt, Plan, build_plan
from margin.run.runner import Progress, RunStats
from margin.suite.tasks import Suite

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
    judges: Sequence[ModelSpec] = (),
    shard: tuple[int, int] | None = None,
) -> RunResult:
    """Plan and run `suites` on `models` into a run directory (default `reports/run-<id>`).

    Resumable: attempts already in the journal are not run again. `cache_dir` defaults to
    `$MARGIN_CACHE_DIR` (else the user cache folder); NO_CACHE turns the cache off.
    """
    from margin.decide.policies import parse_policy
    from margin.run.executors.pool import execute

    names = {m.name for m in models}  # a bad policy is refused before any call is made
    policies = [parse_policy(t, names) for t in settings.policies] if settings.run_policies else []
    executions = settings.repeats  # policy executions per prompt, also in an adaptive run
    if settings.adaptive:
        settings = settings.model_copy(update={"repeats": settings.max_repeats})
    plan = whole = build_plan(suites, models, settings, judges)
    if shard is not None:
        from margin.run.shards import shard_of

        if settings.adaptive:
            raise UserError("--shard and --adaptive do not mix: adaptive decisions need every case")
        index, count = shard
        kept = tuple(a for a in plan.attempts if shard_of(a.key, count) == index)
        plan = Plan(kept, plan.settings, plan.models)
    folder = out if out is not None else default_run_dir(suites, models, settings, shard=shard)
    with run_dir_lock(folder):
        prepare_run_dir(folder, suites, models, settings, shard)
        from margin.judges.trust import record_judges

        record_judges(folder, suites, settings)
        journal_path = folder / JOURNAL_NAME
        cache = default_cache_dir() if cache_dir is None else cache_dir
        from margin.run.adaptive import round_sizes

        rounds = round_sizes(settings.max_repeats) if settings.adaptive else [settings.repeats]
        for size in rounds:
            before = journal_state(journal_path)
            done = before.finished(retry_errors)
            pending = [a for a in plan.attempts if a.key.repeat < size and str(a.key) not in done]
            if settings.adaptive and size != rounds[0]:
                pending = _still_open(pending, journal_path, suites, settings)
                if not pending:
                    continue  # every cell that could use this round is decided (or already run)
            reached = [a for a in plan.attempts if a.key.repeat < size]
            with Journal(journal_path) as journal:
                stats = execute(
                    pending,
                    settings,
                    journal,
                    cache_dir=None if cache == NO_CACHE else cache,
                    read_cache=read_cache,
                    resumed=len(reached) - len(pending),
                    spent=before.spent_usd,
                    progress=progress,
                )
            if stats.halted or stats.budget_stopped or stats.not_run:
                break
        else:
            if policies:
                ran = _run_policies(
                    whole,
                    policies,
                    settings.model_copy(update={"repeats": executions}),
                    journal_path,
                    cache,
                    read_cache,
                    retry_errors,
                    progress,
                    shard,
                )
                stats = ran or stats
    return RunResult(folder, stats, plan)


def _run_policies(
    plan: Plan,
    policies: list[Policy],
    settings: RunSettings,
    journal_path: Path,
    cache: Path,
    read_cache: bool,
    retry_errors: bool,
    progress: Progress | None,
    shard: tuple[int, int] | None,
) -> RunStats | None:
    """Run `policies` for real after the bare attempts, stage by stage."""
    from margin.journal.records import JournalState
    from margin.run.executors.pool import execute
    from margin.run.policy_run import run_policies

    def batch(pending: Sequence[Attempt], before: JournalState) -> RunStats:
        with Journal(journal_path) as journal:
            return execute(
                pending,
                settings,
                journal,
                cache_dir=None if cache == NO_CACHE else cache,
                read_cache=read_cache,
                spent=before.spent_usd,
                progress=progress,
            )

    return run_policies(plan, policies, settings, journal_path, batch, retry_errors, shard)


def _still_open(
    pending: list[Attempt], journal: Path, suites: list[Suite], settings: RunSettings
) -> list[Attempt]:
    """The attempts whose condition cell or task cell the confidence sequence left open."""
    from margin.run.adaptive import decided_cells
    from margin.stats.frame import condition_name
    from margin.stats.score import task_targets

    targets, _ = task_targets(suites, settings)
    conditions, tasks = decided_cells(
        journal, targets, settings.adaptive_alpha, settings.adaptive_delta
    )
    kept = []
    for attempt in pending:
        key, variant = attempt.key, attempt.variant
        task = (key.model, key.suite, key.task)
        condition = (*task, condition_name(variant.paraphrase, variant.kind, variant.level))
        if condition not in conditions or task not in tasks:
            kept.append(attempt)
    return kept
