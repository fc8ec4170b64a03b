"""A whole run: suites and models in, a run directory with its journal out.

This is what `margin run` does and what `margin.run` offers from Python: take the run
directory's lock, write its resolved config, skip what the journal already holds (or, with
`retry_errors`, what ended in an infra error), count what it already spent against the cap,
and execute the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from margin.config import ModelSpec, RunSettings, default_cache_dir
from margin.decide.policy_spec import Policy, parse_policy
from margin.decide.targets import task_targets
from margin.errors import UserError
from margin.execute.delivery import Progress, RunStats
from margin.execute.executors import execute
from margin.execute.lanes import prefix_order
from margin.execute.policy_run import run_policies
from margin.execute.rounds import planned_settings, round_sizes
from margin.execute.shards import Shard, shard_of
from margin.execute.timing import RunTiming, local_snapshot, run_timing, write_timing
from margin.journal.records import JOURNAL_NAME, Journal, JournalState, journal_state
from margin.journal.rundir import default_run_dir, prepare_run_dir, run_dir_lock
from margin.judges.trust import record_judges
from margin.plan import Attempt, Plan, build_plan
from margin.stats.conditions import condition_name
from margin.suite.tasks import Suite

NO_CACHE = Path("")
"""Pass as `cache_dir` to neither read nor write the answer cache."""


@dataclass(frozen=True)
class RunResult:
    """What a run did: where it wrote, its totals, and the keys its plan holds."""

    folder: Path
    stats: RunStats
    plan: Plan
    timing: RunTiming | None = None
    """Where this invocation's time went (also the run directory's `timing.json`)."""

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
    shard: Shard | None = None,
    plan: Plan | None = None,
) -> RunResult:
    """Plan and run `suites` on `models` into a run directory (default `reports/run-<id>`).

    Resumable: attempts already in the journal are not run again. `cache_dir` defaults to
    `$MARGIN_CACHE_DIR` (else the user cache folder); NO_CACHE turns the cache off. `plan`: the
    plan of these suites, models, settings and judges, when the caller has built it already
    (an adaptive run's up to its cap: `planned_settings`).
    """
    names = {m.name for m in models}  # a bad policy is refused before any call is made
    policies = [parse_policy(t, names) for t in settings.policies] if settings.run_policies else []
    executions = settings.repeats  # policy executions per prompt, also in an adaptive run
    if settings.early_stop and settings.adaptive:
        raise UserError("run.early_stop and adaptive repeats do not mix yet: choose one")
    settings = planned_settings(settings)
    whole = plan if plan is not None else build_plan(suites, models, settings, judges)
    plan = _sharded(whole, settings, shard)
    folder = out if out is not None else default_run_dir(suites, models, settings, shard=shard)
    with run_dir_lock(folder):
        prepare_run_dir(folder, suites, models, settings, shard)
        record_judges(folder, suites, settings)
        cache = default_cache_dir() if cache_dir is None else cache_dir
        batches = _Batches(
            folder / JOURNAL_NAME, None if cache == NO_CACHE else cache, read_cache, progress
        )
        local, started = local_snapshot(), time.perf_counter()
        stats, whole_run, stopped = _rounds(plan, suites, settings, batches, retry_errors)
        if whole_run and policies:
            repeats = settings.model_copy(update={"repeats": executions})
            ran = _run_policies(whole, policies, repeats, batches, retry_errors, shard)
            stats = ran or stats
        timing = run_timing(local, time.perf_counter() - started)
        timing.judges_skipped, timing.cases_stopped = batches.judges_skipped, stopped
        write_timing(folder, timing)
    return RunResult(folder, stats, plan, timing)


def _sharded(plan: Plan, settings: RunSettings, shard: Shard | None) -> Plan:
    """The plan's attempts of `shard` (all of them without one)."""
    if shard is None:
        return plan
    if settings.adaptive or settings.early_stop:
        raise UserError(
            "--shard does not mix with --adaptive or run.early_stop: their decisions need every"
            " case"
        )
    index, count = shard
    kept = tuple(a for a in plan.attempts if shard_of(a.key, count) == index)
    return Plan(kept, plan.settings, plan.models)


@dataclass
class _Batches:
    """Executes each batch of a run's attempts into its journal, with the run's cache."""

    journal: Path
    cache_dir: Path | None
    read_cache: bool
    progress: Progress | None
    judges_skipped: int = 0
    """Over every batch: judge verdicts not asked for (the attempt had failed already)."""

    def run(
        self,
        pending: Sequence[Attempt],
        settings: RunSettings,
        before: JournalState,
        resumed: int = 0,
    ) -> RunStats:
        """Run `pending`; `before`, the journal's state before, says what it spent already."""
        with Journal(self.journal) as journal:
            stats = execute(
                prefix_order(pending),
                settings,
                journal,
                cache_dir=self.cache_dir,
                read_cache=self.read_cache,
                resumed=resumed,
                spent=before.spent_usd,
                progress=self.progress,
            )
        self.judges_skipped += stats.judges_skipped
        return stats


def _rounds(
    plan: Plan,
    suites: list[Suite],
    settings: RunSettings,
    batches: _Batches,
    retry_errors: bool,
) -> tuple[RunStats, bool, int]:
    """Run the plan's attempts not yet journaled, round by round (one round unless adaptive or
    `early_stop`). The last round's totals, whether every round ran through (no model halted,
    no budget stop, no attempt left unrun), and the attempts early stopping left unrun."""
    if settings.early_stop:
        # lazy: early stopping reads the journal with pandas between rounds; a plain run never
        from margin.execute.early_stop import finished_now, run_case_rounds

        targets, _ = task_targets(suites, settings)
        cases = run_case_rounds(
            plan.attempts,
            batches.journal,
            targets,
            settings.adaptive_alpha,
            settings.seed,
            lambda: finished_now(batches.journal, retry_errors),
            lambda pending, before, resumed: batches.run(pending, settings, before, resumed),
        )
        return cases.stats, cases.whole, cases.stopped
    rounds = round_sizes(settings.max_repeats) if settings.adaptive else [settings.repeats]
    stats = None
    for size in rounds:
        before = journal_state(batches.journal)
        done = before.finished(retry_errors)
        pending = [a for a in plan.attempts if a.key.repeat < size and str(a.key) not in done]
        if settings.adaptive and size != rounds[0]:
            pending = _still_open(pending, batches.journal, suites, settings)
            if not pending:
                continue  # every cell that could use this round is decided (or already run)
        reached = sum(1 for a in plan.attempts if a.key.repeat < size)
        stats = batches.run(pending, settings, before, resumed=reached - len(pending))
        if stats.halted or stats.budget_stopped or stats.not_run:
            return stats, False, 0
    assert stats is not None  # the first round always runs
    return stats, True, 0


def _run_policies(
    plan: Plan,
    policies: list[Policy],
    settings: RunSettings,
    batches: _Batches,
    retry_errors: bool,
    shard: Shard | None,
) -> RunStats | None:
    """Run `policies` for real after the bare attempts, stage by stage."""

    def batch(pending: Sequence[Attempt], before: JournalState) -> RunStats:
        return batches.run(pending, settings, before)

    return run_policies(plan, policies, settings, batches.journal, batch, retry_errors, shard)


def _still_open(
    pending: list[Attempt], journal: Path, suites: list[Suite], settings: RunSettings
) -> list[Attempt]:
    """The attempts whose condition cell or task cell the confidence sequence left open."""
    # lazy: adaptive decisions read the journal with pandas between rounds; a plain run never
    from margin.execute.adaptive import decided_cells

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
