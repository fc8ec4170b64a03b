"""The judges of a run: which `judge` validators it used, how they behaved, whether to trust them.

At the start of `margin run`, each judge validator of the run's suites is written to the run
directory's `judges.json` with its `margin judge-check` result when the validator names a
labels file that has one (`NAME.check.json` beside it). Scoring joins that with what the
journal recorded (scored and unscored verdicts, self-agreement, cost) into one row per judge.
A judge is trusted when its check was made with the same judge model and rubric and its κ is
at least `run.judge.min_kappa`; an unchecked judge is not trusted either.

`JudgeCheck`, the file `margin judge-check` writes (`margin.judges.check`), is defined here,
where runs read it: reading a check never loads the runner that makes one.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from margin.config import RunSettings
from margin.errors import invalid_data
from margin.journal.records import latest_records
from margin.journal.rundir import read_json, write_atomically
from margin.results.rows import JudgeKey, JudgeRow
from margin.suite.tasks import Suite
from margin.validators.judge import JudgeValidator

JUDGES_NAME = "judges.json"
CHECK_SUFFIX = ".check.json"
CHECK_FIELDS = ("examples", "agreement", "kappa", "kappa_low", "kappa_high", "false_pass_rate",
                "false_fail_rate", "matrix")  # fmt: skip
"""What a judge's row takes from its `margin judge-check` result."""


class JudgeCheck(JudgeKey):
    """The outcome of `margin judge-check`."""

    model_config = ConfigDict(frozen=True)

    judge_model: str
    """Its litellm id."""
    rubric_sha256: str
    """The rubric checked: a changed rubric needs a new check."""
    examples: int
    scored: int
    """Examples the judge decided (unscored ones are excluded and counted)."""
    unscored: int
    agreement: float | None
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None
    false_pass_rate: float | None
    """Share of the human fails the judge passed."""
    false_fail_rate: float | None
    """Share of the human passes the judge failed."""
    matrix: list[list[int]]
    """[[human pass & judge pass, human pass & judge fail], [human fail & judge pass, …]]."""
    self_agreement: float | None
    """Mean share of a judge's repeated answers that agree with their majority."""
    disagreements: list[str]
    """Ids of the examples where judge and human differ."""


def rubric_sha(check: JudgeValidator) -> str:
    """The fingerprint of a judge's rubric and answer cap."""
    return hashlib.sha256(f"{check.rubric}\x00{check.max_tokens}".encode()).hexdigest()[:16]


def check_path(labels: Path) -> Path:
    """Where the check of `labels` is written: beside it, `NAME.check.json`."""
    return labels.with_name(labels.stem + CHECK_SUFFIX)


class JudgeEntry(JudgeKey):
    """A judge validator of the run, with the check found for it when the run started."""

    model_config = ConfigDict(frozen=True)

    rubric_sha256: str
    labels: str | None = None
    check: JudgeCheck | None = None


_ENTRIES = TypeAdapter(list[JudgeEntry])


def record_judges(folder: Path, suites: list[Suite], settings: RunSettings) -> None:
    """Write `judges.json` for the run directory `folder` (nothing when no task has a judge)."""
    entries = []
    for suite in suites:
        for task in suite.tasks:
            for label, check in task.judges():  # the cases' own judges too
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
                        validator=label,
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


def judge_rows(folder: Path, min_kappa: float) -> list[JudgeRow]:
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
            JudgeRow(
                **{name: getattr(entry, name) for name in JudgeKey.model_fields},
                scored=stats["scored"],
                unscored=stats["unscored"],
                calls=stats["calls"],
                cost_usd=stats["cost"],
                self_agreement=sum(agreements) / len(agreements) if agreements else None,
                self_agreement_n=len(agreements),
                checked=check is not None,
                **{f: None if check is None else getattr(check, f) for f in CHECK_FIELDS},
                min_kappa=min_kappa,
                trusted=trusted,
                status=status,
            )
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
