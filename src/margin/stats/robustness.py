"""How reliability holds up: drop under noise, paraphrase spread, and the margin per axis.

All three read the condition cells (model × task × condition) of `cells.cell_table`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED

CLEAN = "p0"


def noise_drops(conditions: pd.DataFrame) -> pd.DataFrame:
    """Per model × task × noise kind × level: the rate, its interval and verdict beside the
    clean prompt's, and PDR = 1 − p̂(level) / p̂(clean) (NaN when the clean rate is 0)."""
    clean = conditions[conditions["condition"] == CLEAN][["model", "suite", "task", "rate"]]
    noisy = conditions[conditions["noise_kind"] != "clean"]
    columns = ["model", "suite", "task", "noise_kind", "noise_level", "n", "rate", "low", "high"]
    table = noisy[[*columns, "verdict"]].merge(
        clean.rename(columns={"rate": "clean_rate"}), on=["model", "suite", "task"], how="left"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = 1 - table["rate"] / table["clean_rate"].where(table["clean_rate"] > 0)
    return table.assign(drop=drop).sort_values(
        ["model", "suite", "task", "noise_kind", "noise_level"]
    )


def paraphrase_spread(conditions: pd.DataFrame) -> pd.DataFrame:
    """Per model × task over the clean prompt and its paraphrases: MaxP, AvgP, MinP (Mizrahi et
    al. 2024) and the worst wording."""
    wordings = conditions[conditions["noise_kind"] == "clean"]
    rows = []
    for (model, suite, task), group in wordings.groupby(
        ["model", "suite", "task"], observed=True, sort=False
    ):
        judged = group[group["n"] > 0]
        if len(judged) < 2:
            continue
        worst = judged.sort_values("rate", kind="stable").iloc[0]
        rows.append(
            {
                "model": model,
                "suite": suite,
                "task": task,
                "wordings": len(judged),
                "max_p": judged["rate"].max(),
                "avg_p": judged["rate"].mean(),
                "min_p": judged["rate"].min(),
                "worst": worst["condition"],
            }
        )
    columns = ["model", "suite", "task", "wordings", "max_p", "avg_p", "min_p", "worst"]
    return pd.DataFrame(rows, columns=columns)


def margins(conditions: pd.DataFrame) -> pd.DataFrame:
    """Per model × task × noise axis: the highest level at which the model crosses the target,
    with the clean prompt and every lower level crossing too.

    `status`: `beyond` (it crosses at every level tried: the margin is at least the highest),
    `bounded` (the next level falls short), `undecided` (the next level, or the clean prompt, is
    undecided: more evidence could move the margin), `none` (it does not cross even clean).
    `margin` is the level (0 = only the clean prompt), NaN for `none` and an undecided clean.
    """
    rows = []
    for (model, suite, task), group in conditions.groupby(
        ["model", "suite", "task"], observed=True, sort=False
    ):
        clean = group[group["condition"] == CLEAN]
        if clean.empty:
            continue
        clean_verdict = str(clean["verdict"].iloc[0])
        for kind, axis in group[group["noise_kind"] != "clean"].groupby(
            "noise_kind", observed=True, sort=True
        ):
            steps = [(0.0, clean_verdict)] + [
                (float(level), str(verdict))
                for level, verdict in sorted(zip(axis["noise_level"], axis["verdict"], strict=True))
            ]
            margin, status, next_level = _walk(steps)
            rows.append(
                {
                    "model": model,
                    "suite": suite,
                    "task": task,
                    "axis": kind,
                    "margin": margin,
                    "status": status,
                    "breaks_at": next_level,
                    "levels": len(steps) - 1,
                }
            )
    columns = ["model", "suite", "task", "axis", "margin", "status", "breaks_at", "levels"]
    return pd.DataFrame(rows, columns=columns)


def _walk(steps: list[tuple[float, str]]) -> tuple[float, str, float]:
    """(margin, status, the first level that did not cross) along one axis, clean first."""
    margin = np.nan
    for level, verdict in steps:
        if verdict == CROSSES:
            margin = level
            continue
        if verdict == FALLS_SHORT:
            return margin, "none" if np.isnan(margin) else "bounded", level
        return margin, UNDECIDED, level
    return margin, "beyond", np.nan
