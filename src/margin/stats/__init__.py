"""Pure statistics over the journal (pandas; scipy and statsmodels for the distributions).

The journal's frames (`read_attempts`), intervals and tests (`rate_interval`, `wilson_interval`,
`design_effect`, `mcnemar_mid_p`, …), cells (`cell_table`), comparisons (`compare_pairs`) and
robustness. Nothing here decides: `margin.decide.scores.score_run` scores a run directory from
these pieces, then ranks and recommends.

The names below load on first use: importing one pandas-free module of this package (`numbers`,
`phrases`, `conditions`) does not import pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "CONDITION",
    "CROSSES",
    "FALLS_SHORT",
    "MODEL",
    "TASK",
    "UNDECIDED",
    "Attempts",
    "attempts_of",
    "cell_table",
    "compare_pairs",
    "condition_name",
    "design_effect",
    "detectable_difference",
    "mcnemar_mid_p",
    "outcome_matrix",
    "pass_at_k",
    "pass_hat_k",
    "pass_k_table",
    "rate_interval",
    "read_attempts",
    "straight_passes_to_cross",
    "validator_table",
    "wilson_interval",
]

_WHERE = {
    **dict.fromkeys(
        ["CONDITION", "MODEL", "TASK", "cell_table", "pass_k_table", "validator_table"],
        "margin.stats.cells",
    ),
    **dict.fromkeys(
        ["compare_pairs", "detectable_difference", "outcome_matrix"], "margin.stats.compare"
    ),
    **dict.fromkeys(["Attempts", "attempts_of", "read_attempts"], "margin.stats.frame"),
    "condition_name": "margin.stats.conditions",
    **dict.fromkeys(
        [
            "CROSSES",
            "FALLS_SHORT",
            "UNDECIDED",
            "design_effect",
            "mcnemar_mid_p",
            "pass_at_k",
            "pass_hat_k",
            "rate_interval",
            "straight_passes_to_cross",
            "wilson_interval",
        ],
        "margin.stats.intervals",
    ),
}

if TYPE_CHECKING:
    from margin.stats.cells import (
        CONDITION,
        MODEL,
        TASK,
        cell_table,
        pass_k_table,
        validator_table,
    )
    from margin.stats.compare import compare_pairs, detectable_difference, outcome_matrix
    from margin.stats.conditions import condition_name
    from margin.stats.frame import Attempts, attempts_of, read_attempts
    from margin.stats.intervals import (
        CROSSES,
        FALLS_SHORT,
        UNDECIDED,
        design_effect,
        mcnemar_mid_p,
        pass_at_k,
        pass_hat_k,
        rate_interval,
        straight_passes_to_cross,
        wilson_interval,
    )


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'margin.stats' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
