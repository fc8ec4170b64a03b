"""The answers side by side: per task, one row per case × condition (and variant and repeat
where the run has several), one column per model, each cell the answer with its pass or fail
and the failing validators' reasons. Read from the journal through its reader (the latest
record of each attempt; steps of policies run for real are not a bare model's answers).

index.html holds a capped selection (rows where models disagree, where the recommended model
fails, or with a silent failure first, within a byte budget), with the counts of what was left
out; `margin report --full` writes every row into answers-N.html pages, each under a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import escape

from margin.journal.records import AttemptRecord, read_journal
from margin.report.views import Clip, clip, note_failure
from margin.results.document import Results
from margin.stats.conditions import condition_name

MAX_ROWS_PER_TASK = 50
"""Rows of one task shown in index.html (`--full` writes every row)."""
PAGE_BUDGET = 1_500_000
"""Estimated bytes of side-by-side rows in index.html, all tasks together."""
FULL_PAGE_BUDGET = 4_000_000
"""Estimated bytes of rows in one answers-N.html page: a run of any size splits into pages."""
SHORT_ANSWER = 240
"""Answers longer than this collapse into a <details> showing their start."""
ROW_OVERHEAD = 400
"""Bytes of markup per row and per cell, beside the text, for the byte estimates."""

RowKey = tuple[str, str, int]
"""(case, variant, repeat)."""
TaskKey = tuple[str, str]
"""(suite, task)."""


@dataclass(frozen=True)
class Message:
    role: str
    content: Clip


@dataclass(frozen=True)
class Cell:
    """One model's answer to one row's prompt."""

    model: str
    status: str
    """`pass`, `fail`, `infra error` or `unscored`."""
    silent: bool
    """Failed while every production guard passed."""
    answer: Clip
    reasons: tuple[tuple[str, Clip], ...]
    """(validator, reason) of each failed check."""
    truncated: bool
    messages: tuple[Message, ...]
    size: int
    """Estimated bytes on the page: the escaped texts and ROW_OVERHEAD."""

    @property
    def short(self) -> bool:
        return len(self.answer.text) <= SHORT_ANSWER and not self.answer.cut


@dataclass
class AnswerRow:
    """One case under one condition (one variant and repeat): every model's answer."""

    case: str
    condition: str
    variant: str
    repeat: int
    cells: dict[str, Cell] = field(default_factory=dict)
    recommended: str | None = None

    @property
    def prompt(self) -> tuple[Message, ...]:
        """The messages as sent (the first model's; a cell shows its own when they differ)."""
        first = next(iter(self.cells.values()))
        return first.messages

    @property
    def disagree(self) -> bool:
        """Models judged on this prompt did not all pass or all fail."""
        return len({c.status for c in self.cells.values() if c.status in ("pass", "fail")}) > 1

    @property
    def recommended_fails(self) -> bool:
        cell = self.cells.get(self.recommended or "")
        return cell is not None and cell.status == "fail"

    @property
    def silent(self) -> bool:
        return any(c.silent for c in self.cells.values())

    @property
    def flags(self) -> str:
        """The row's filter values, space separated (data-show)."""
        names = [
            ("disagree", self.disagree),
            ("recommended-fails", self.recommended_fails),
            ("silent", self.silent),
        ]
        return " ".join(name for name, on in names if on)

    @property
    def notable(self) -> bool:
        return bool(self.flags)

    @property
    def size(self) -> int:
        prompt = sum(escaped_size(m.content.text) for m in self.prompt)
        return ROW_OVERHEAD + prompt + sum(c.size for c in self.cells.values())

    def own_prompt(self, cell: Cell) -> bool:
        """The cell's messages differ from the row's prompt: shown in the cell."""
        return cell.messages != self.prompt


@dataclass(frozen=True)
class LeftOut:
    """What a capped table does not show."""

    rows: int = 0
    disagree: int = 0
    recommended_fails: int = 0
    silent: int = 0


@dataclass(frozen=True)
class TaskAnswers:
    """One task's table."""

    suite: str
    task: str
    models: list[str]
    recommended: str | None
    rows: list[AnswerRow]
    total: int
    left_out: LeftOut = LeftOut()

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.task}"

    @property
    def anchor(self) -> str:
        return "answers-" + "".join(ch if ch.isalnum() else "-" for ch in self.name)


def cell_of(record: AttemptRecord) -> Cell:
    """A journal record as a cell."""
    if record.infra_error:
        status = "infra error"
    elif record.passed is None:
        status = "unscored"
    else:
        status = "pass" if record.passed else "fail"
    failed = tuple((v.validator, clip(v.reason, 500)) for v in record.verdicts if not v.passed)
    answer = clip(record.output if not record.infra_error else record.error_message)
    texts = [answer.text, *(r.text for _, r in failed)]
    return Cell(
        model=record.model,
        status=status,
        silent=record.passed is False and record.guards_passed is True,
        answer=answer,
        reasons=failed,
        truncated=record.truncated,
        messages=tuple(Message(m.role, clip(m.content)) for m in record.messages),
        size=ROW_OVERHEAD + sum(escaped_size(t) for t in texts),
    )


def escaped_size(text: str) -> int:
    """Bytes of `text` escaped as HTML (a page of `<` is four times its text)."""
    return len(str(escape(text)).encode())


AttemptKey = tuple[str, str, str, str, str, int]
"""(model, suite, task, case, variant, repeat): how attempts match across runs."""


@dataclass(frozen=True)
class LatestAnswers:
    """What the report reads from the journal, in one pass (`read_latest`)."""

    cells: dict[AttemptKey, Cell]
    """The latest record of every bare attempt as a cell, in the order attempts first appear."""
    conditions: dict[tuple[str, str, str], str]
    """The condition of every (suite, task, variant)."""
    failing: list[AttemptRecord]
    """The drill-down's failures (`views.latest_failures`: policy steps included)."""


def read_latest(journal: Path) -> LatestAnswers:
    """The answers side by side and the failing attempts, from one read of the journal."""
    cells: dict[AttemptKey, Cell] = {}
    conditions: dict[tuple[str, str, str], str] = {}
    failed: dict[str, AttemptRecord | None] = {}
    for record in read_journal(journal):
        note_failure(failed, record)
        _add_cell(cells, conditions, record)
    return LatestAnswers(cells, conditions, [r for r in failed.values() if r is not None])


def latest_cells(journal: Path) -> tuple[dict[AttemptKey, Cell], dict[tuple[str, str, str], str]]:
    """The latest record of every bare attempt as a cell, in the order the attempts first
    appear; and the condition of every (suite, task, variant)."""
    cells: dict[AttemptKey, Cell] = {}
    conditions: dict[tuple[str, str, str], str] = {}
    for record in read_journal(journal):
        _add_cell(cells, conditions, record)
    return cells, conditions


def _add_cell(
    cells: dict[AttemptKey, Cell],
    conditions: dict[tuple[str, str, str], str],
    record: AttemptRecord,
) -> None:
    """`record` as its attempt's latest cell (a policy's step is not a bare model's answer)."""
    if record.policy is not None:
        return
    key = (record.model, record.suite, record.task, record.case, record.variant, record.repeat)
    cells[key] = cell_of(record)
    conditions[(record.suite, record.task, record.variant)] = condition_name(
        record.paraphrase, record.noise_kind, record.noise_level
    )


def recommended_models(results: Results) -> dict[TaskKey, str | None]:
    """Per task, the model it ships on (the feature's choice when it is a model), else the one
    model recommended for everything."""
    chosen: dict[TaskKey, str | None] = {}
    for feature in results.features:
        if feature.kind == "model" and feature.choice:
            chosen[(feature.suite, feature.task)] = feature.choice
    default = results.recommendation.model
    return {(t.suite, t.task): chosen.get((t.suite, t.task), default) for t in results.tasks}


def model_order(results: Results, present: Iterable[str]) -> list[str]:
    """The run's models in config order, those with answers only."""
    have = set(present)
    named = [m.name for m in results.run.models if m.name in have]
    return named + sorted(have - set(named))


def task_rows(results: Results, read: LatestAnswers) -> Iterator[tuple[TaskKey, list[AnswerRow]]]:
    """Every task's rows, in the order their cases and variants first appear (`read`: what
    `read_latest` read of the run's journal)."""
    cells, conditions = read.cells, read.conditions
    recommended = recommended_models(results)
    by_task: dict[TaskKey, dict[RowKey, AnswerRow]] = {}
    for (model, suite, task, case, variant, repeat), cell in cells.items():
        rows = by_task.setdefault((suite, task), {})
        row = rows.get((case, variant, repeat))
        if row is None:
            condition = conditions[(suite, task, variant)]
            row = AnswerRow(case, condition, variant, repeat)
            row.recommended = recommended.get((suite, task), results.recommendation.model)
            rows[(case, variant, repeat)] = row
        row.cells[model] = cell
    for key, rows in by_task.items():
        cases = {case: i for i, case in enumerate(dict.fromkeys(k[0] for k in rows))}
        variants = {v: i for i, v in enumerate(dict.fromkeys(k[1] for k in rows))}
        ordered = sorted(
            rows.items(), key=lambda kv: (cases[kv[0][0]], variants[kv[0][1]], kv[0][2])
        )
        yield key, [row for _, row in ordered]


def side_by_side(results: Results, read: LatestAnswers) -> list[TaskAnswers]:
    """Every task's table with every row (what `--full` writes; `capped` selects for the page),
    from what `read_latest` read of the run's journal."""
    tables = []
    for (suite, task), rows in task_rows(results, read):
        models = model_order(results, (m for row in rows for m in row.cells))
        recommended = rows[0].recommended if rows else None
        tables.append(TaskAnswers(suite, task, models, recommended, rows, len(rows)))
    return tables


def capped(tables: list[TaskAnswers], budget: int = PAGE_BUDGET) -> list[TaskAnswers]:
    """The tables for index.html: notable rows first, at most MAX_ROWS_PER_TASK per task and
    `budget` estimated bytes in all, with the counts of what was left out."""
    out = []
    for table in tables:
        shown, budget = _capped(table.rows, budget)
        out.append(
            TaskAnswers(
                table.suite,
                table.task,
                table.models,
                table.recommended,
                shown,
                table.total,
                _left_out(table.rows, shown),
            )
        )
    return out


def _capped(rows: list[AnswerRow], budget: int) -> tuple[list[AnswerRow], int]:
    """Notable rows first, then the rest, while the task's cap and the page's budget allow;
    shown in their own order."""
    picked: set[int] = set()
    notable = [r.notable for r in rows]  # once per row: each reads every cell
    for index in [i for i, n in enumerate(notable) if n] + [
        i for i, n in enumerate(notable) if not n
    ]:
        size = rows[index].size
        if len(picked) >= MAX_ROWS_PER_TASK:
            break
        if size > budget:
            continue
        picked.add(index)
        budget -= size
    return [r for i, r in enumerate(rows) if i in picked], budget


def _left_out(rows: list[AnswerRow], shown: list[AnswerRow]) -> LeftOut:
    kept = {id(r) for r in shown}
    rest = [r for r in rows if id(r) not in kept]
    return LeftOut(
        rows=len(rest),
        disagree=sum(r.disagree for r in rest),
        recommended_fails=sum(r.recommended_fails for r in rest),
        silent=sum(r.silent for r in rest),
    )


def conditions_of(tables: list[TaskAnswers]) -> list[str]:
    return sorted({row.condition for t in tables for row in t.rows})


def split_pages(
    tables: list[TaskAnswers], budget: int = FULL_PAGE_BUDGET
) -> list[list[TaskAnswers]]:
    """Every row, in pages of at most `budget` estimated bytes (a task too large for one page
    continues on the next, its table headed again)."""
    pages: list[list[TaskAnswers]] = [[]]
    room = budget
    for table in tables:
        chunk: list[AnswerRow] = []
        for row in table.rows:
            if chunk and row.size > room:
                pages[-1].append(_part(table, chunk))
                pages.append([])
                chunk, room = [], budget
            elif not chunk and row.size > room and pages[-1]:
                pages.append([])
                room = budget
            chunk.append(row)
            room -= row.size
        if chunk or not table.rows:
            pages[-1].append(_part(table, chunk))
    return [page for page in pages if page]


def _part(table: TaskAnswers, rows: list[AnswerRow]) -> TaskAnswers:
    return TaskAnswers(table.suite, table.task, table.models, table.recommended, rows, table.total)
