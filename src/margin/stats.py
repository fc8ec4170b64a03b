"""Pure aggregation over the journal (pandas). The reporter builds on these frames."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from margin.journal import AttemptRecord, read_journal

COLUMNS = [
    "key", "model", "suite", "task", "case", "variant", "noise_kind", "noise_level", "repeat",
    "passed", "partial", "latency_s", "cost_usd", "cost_saved_usd", "error", "retries", "cache_hit",
]  # fmt: skip


def journal_frame(records: Iterable[AttemptRecord]) -> pd.DataFrame:
    """One row per attempt with the columns statistics need."""
    rows = [record.model_dump(include=set(COLUMNS)) for record in records]
    return pd.DataFrame(rows, columns=COLUMNS)


def load_frame(path: Path) -> pd.DataFrame:
    """The journal at `path` as a frame: the latest record of each key (a retried infra error
    leaves its earlier record in the journal's history)."""
    frame = journal_frame(read_journal(path))
    return frame.drop_duplicates("key", keep="last").reset_index(drop=True)


def model_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model: attempts, judged (infra errors excluded), passes, pass rate, infra errors."""
    judged = frame[frame["error"].isna()]
    summary = pd.DataFrame(
        {
            "attempts": frame.groupby("model", sort=False).size(),
            "judged": judged.groupby("model", sort=False).size(),
            "passed": judged.groupby("model", sort=False)["passed"].sum(),
            "infra_errors": frame[frame["error"].notna()].groupby("model", sort=False).size(),
            "spent_usd": frame.groupby("model", sort=False)["cost_usd"].sum(min_count=1),
        }
    ).fillna({"judged": 0, "passed": 0, "infra_errors": 0})
    summary["pass_rate"] = summary["passed"] / summary["judged"].where(summary["judged"] > 0)
    return summary.astype({"judged": int, "passed": int, "infra_errors": int})


def task_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Pass rate per task (rows, `suite/task`) and model (columns); infra errors excluded."""
    judged = frame[frame["error"].isna()].assign(
        task_id=lambda f: f["suite"] + "/" + f["task"], passed=lambda f: f["passed"].astype(float)
    )
    matrix = judged.pivot_table(index="task_id", columns="model", values="passed", aggfunc="mean")
    models = list(dict.fromkeys(frame["model"]))
    return matrix.reindex(columns=[m for m in models if m in matrix.columns])
