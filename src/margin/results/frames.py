"""A scored run as pandas frames, for notebooks and tools that read Arrow.

`load_results(run_dir)` scores the run directory's journal exactly as `margin score` does, so
each table equals `margin score --format csv --by …` row for row (same columns, same values):
`models`, `tasks` (`--by task`), `conditions` (`--by condition`), `validators`
(`--by validator`); `attempts` is the journal itself, one row per attempt (its latest record),
the frame those tables were computed from; `features` is results.json's decision per feature.
Counts that may be missing (`silent`, `guarded_n`, …) are `Int64` in every run, never
`object`, so each column keeps one type in Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args

import pandas as pd
from pandas.api.types import pandas_dtype

from margin.decide.scores import Scores, score_run
from margin.results.rows import ConditionRow, ModelRow, Row, TaskRow, ValidatorRow
from margin.results.score import results_of

TABLES = ("models", "tasks", "conditions", "validators")
"""The tables `margin score --format csv` prints: `--by task` is `tasks`, and so on."""


@dataclass(frozen=True)
class ResultFrames:
    """A scored run: one frame per table (columns as in `margin score --format csv`)."""

    models: pd.DataFrame
    """One row per model, all tasks pooled: rank band, reliability, cost, latency, Pareto."""
    tasks: pd.DataFrame
    """One row per model × task (`margin score --by task`)."""
    conditions: pd.DataFrame
    """One row per model × task × condition (`--by condition`)."""
    validators: pd.DataFrame
    """One row per model × task × validator (`--by validator`)."""
    attempts: pd.DataFrame
    """One row per attempt, its latest record: model, suite, task, case, condition, repeat,
    `judged`, `passed` (1.0 / 0.0, NaN for an infra error), latency, tokens, cost, error."""
    features: pd.DataFrame
    """The decision per feature (results.json's `features`): what each task ships on."""

    def table(self, name: str) -> pd.DataFrame:
        """The table called `name` (one of TABLES, or `attempts`, `features`)."""
        frame: pd.DataFrame = getattr(self, name)
        return frame


def load_results(run_dir: str | Path) -> ResultFrames:
    """The run directory `run_dir` scored into frames, calling no model.

    A folder that is not a run, or a damaged journal, is a UserError, as for `margin score`.
    """
    folder = Path(run_dir)
    return frames_of(folder, score_run(folder))


def frames_of(folder: Path, scores: Scores) -> ResultFrames:
    """The frames of a run `scores` already scored."""
    results = results_of(folder, scores)
    return ResultFrames(
        models=typed(scores.models, ModelRow),
        tasks=typed(scores.tasks, TaskRow),
        conditions=typed(scores.conditions, ConditionRow),
        validators=typed(scores.validators, ValidatorRow),
        attempts=typed(scores.attempts.frame),
        features=pd.DataFrame([row.model_dump() for row in results.features]),
    )


def typed(frame: pd.DataFrame, row: type[Row] | None = None) -> pd.DataFrame:
    """`frame` (copied) with columns of mixed values typed the same in every run: a field that
    results.json's `row` type declares `int | None` is `Int64` (whole numbers with gaps), any
    other `object` column takes its declared type (`float` as float64 with NaN, `str` as
    `string`), else the type of its values."""
    frame = frame.reset_index(drop=True).copy()
    fields = row.model_fields if row is not None else {}
    for column in frame.columns:
        declared = fields[column].annotation if column in fields else None
        if _bare(declared) is int and declared is not int:
            frame[column] = frame[column].astype("Int64")
        elif frame[column].dtype == object:
            dtype = _DTYPES.get(_bare(declared)) or _dtype_of(frame[column])
            frame[column] = frame[column].astype(pandas_dtype(dtype))
    return frame


_DTYPES: dict[Any, str] = {int: "Int64", float: "float64", str: "string"}


def _bare(annotation: Any) -> Any:
    """`int` for `int | None`; the annotation itself when it is no such union."""
    if isinstance(annotation, UnionType):
        rest = [a for a in get_args(annotation) if a is not NoneType]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _dtype_of(column: pd.Series) -> str:
    values = [v for v in column if v is not None and not (isinstance(v, float) and v != v)]
    if not values:
        return "object"
    if all(isinstance(v, str) for v in values):
        return "string"
    if any(isinstance(v, bool) or not isinstance(v, Real) for v in values):
        return "object"
    return "Int64" if all(isinstance(v, Integral) for v in values) else "float64"
