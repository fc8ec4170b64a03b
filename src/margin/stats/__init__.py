"""Pure statistics over the journal (pandas; scipy and statsmodels for the distributions).

`score_run(folder)` scores a run directory; the pieces are importable on their own: the
journal's frames (`read_attempts`), intervals and tests (`wilson_interval`, `design_effect`,
`mcnemar_mid_p`, …), cells (`cell_table`) and comparisons (`compare_pairs`).
"""

from margin.stats.cells import CONDITION, MODEL, TASK, cell_table, pass_k_table, validator_table
from margin.stats.compare import compare_pairs, detectable_difference, outcome_matrix
from margin.stats.frame import Attempts, attempts_of, condition_name, read_attempts
from margin.stats.intervals import (
    CROSSES,
    FALLS_SHORT,
    UNDECIDED,
    design_effect,
    mcnemar_mid_p,
    pass_at_k,
    pass_hat_k,
    straight_passes_to_cross,
    wilson_interval,
)
from margin.stats.score import Scores, score_attempts, score_run, task_targets

__all__ = [
    "CONDITION",
    "CROSSES",
    "FALLS_SHORT",
    "MODEL",
    "TASK",
    "UNDECIDED",
    "Attempts",
    "Scores",
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
    "read_attempts",
    "score_attempts",
    "score_run",
    "straight_passes_to_cross",
    "task_targets",
    "validator_table",
    "wilson_interval",
]
