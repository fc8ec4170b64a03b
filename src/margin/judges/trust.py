"""The judges of a run: which `judge` validators it used, how they behaved, whether to trust them.

At the start of `margin run`, each judge validator of the run's suites is written to the run
directory's `judges.json` with its `margin judge-check` result when the validator names a
labels file that has one (`NAME.check.json` beside it). Scoring joins that with what the
journal recorded (scored and unscored verdicts, self-agreement, cost) into one row per judge.
A judge is trusted when its check was made with the same judge model and rubric and its κ is
at least `run.judge.min_kappa`; an unchecked judge is not trusted either.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from margin.config import RunSettings
from margin.errors import invalid_data
from margin.journal.records import latest_records
from margin.journal.rundir import read_json, write_atomically
from margin.judges.check import JudgeCheck, check_path, rubric_sha
from margin.suite.tasks import Suite
from margin.validators.judge import JudgeValidator

JUDGES_NAME = "judges.json"
CHECK_FIELDS = ("examples", "agreement", "kappa", "kappa_low", "kappa_high", "false_pass_rate",
                "false_fail_rate")  # fmt: skip
"""What a judge's row takes from its `margin judge-check` result."""


class JudgeEntry(BaseModel):
    """A judge validator of the run, with the check found for it when the run started."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    task: str
    validator: str
    judge: str
    rubric_sha256: str
    labels: str | None = None
    check: JudgeCheck | None = None


_ENTRIES = TypeAdapter(list[JudgeEntry])


def record_judges(folder: Path, suites: list[Suite], settings: RunSettings) -> None:
    """Write `judges.json` for the run directory `folder` (nothing when no task has a judge)."""
    entries = []
    for suite in suites:
        for task in suite.tasks:
            judges = [c for c in task.checks() if isinstance(c, JudgeValidator)]
            for position, check in enumerate(judges, start=1):
                labels = check_file = None
                if check.labels is not None and suite.path is not None:
                    labels = suite.path.parent / check.labels
                    check_file = check_path(labels)
                found = None
                if check_file is not None and check_file.exists():
                    try:
                        found = JudgeCheck.model_validate_json(check_file.read_text("utf-8"))
                    except (OSError, ValidationError):
                        found = None  # a damaged check is no check
                entries.append(
                    JudgeEntry(
                        suite=suite.suite,
                        task=task.id,
                        validator="judge" if position == 1 else f"judge#{position}",
                        judge=check.model or settings.judge.model or "",
                        rubric_sha256=rubric_sha(check),
                        labels=None if labels is None else str(labels),
                        check=found,
                    )
                )
    path = folder / JUDGES_NAME
    if entries:
        text = json.dumps([e.model_dump(mode="json") for e in entries], indent=1)
        write_atomically(path, text + "\n")
    elif path.exists():
        path.unlink()


def judge_rows(folder: Path, min_kappa: float) -> list[dict[str, Any]]:
    """One row per judge of the run: its verdicts in the journal and its trust."""
    path = folder / JUDGES_NAME
    if not path.exists():
        return []
    try:
        entries = _ENTRIES.validate_python(read_json(path))
    except ValidationError as exc:
        raise invalid_data(exc, "not a margin judges file", path) from None
    seen: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"scored": 0, "unscored": 0, "agreements": [], "cost": 0.0, "calls": 0}
    )
    for record in latest_records(folder / "journal.jsonl").values():
        judged = [v for v in record.verdicts if v.judge is not None]
        for position, verdict in enumerate(judged, start=1):
            label = "judge" if position == 1 else f"judge#{position}"
            row = seen[(record.suite, record.task, label)]
            row["unscored" if verdict.unscored else "scored"] += 1
            trace = verdict.judge
            assert trace is not None
            row["calls"] += len(trace.answers) - trace.cache_hits
            row["cost"] += trace.cost_usd or 0.0
            if trace.agreement is not None and len(trace.answers) > 1:
                row["agreements"].append(trace.agreement)
    rows = []
    for entry in entries:
        stats = seen[(entry.suite, entry.task, entry.validator)]
        check = entry.check
        status, trusted = _trust(entry, check, min_kappa)
        agreements = stats["agreements"]
        rows.append(
            {
                "suite": entry.suite,
                "task": entry.task,
                "validator": entry.validator,
                "judge": entry.judge,
                "scored": stats["scored"],
                "unscored": stats["unscored"],
                "calls": stats["calls"],
                "cost_usd": stats["cost"],
                "self_agreement": sum(agreements) / len(agreements) if agreements else None,
                "checked": check is not None,
                **{f: None if check is None else getattr(check, f) for f in CHECK_FIELDS},
                "min_kappa": min_kappa,
                "trusted": trusted,
                "status": status,
            }
        )
    return rows


def _trust(entry: JudgeEntry, check: JudgeCheck | None, floor: float) -> tuple[str, bool]:
    if not entry.judge:
        return "not applied: no judge model (set run.judge.model or the validator's model)", False
    if check is None:
        where = f" (labels {entry.labels})" if entry.labels else " (no labels: set `labels:`)"
        return f"not checked against human labels{where}", False
    if check.judge != entry.judge or check.rubric_sha256 != entry.rubric_sha256:
        return "checked with another judge or rubric: run margin judge-check again", False
    if check.kappa is None:
        return "κ undefined on the labels (one verdict throughout)", False
    if check.kappa < floor:
        return f"κ {check.kappa:.2f} < min_judge_kappa {floor:g}", False
    return f"κ {check.kappa:.2f} ≥ min_judge_kappa {floor:g}", True
