"""Pure statistics over the journal (pandas; scipy and statsmodels for the distributions).

The journal's frames (`read_attempts`), intervals and tests (`rate_interval`, `wilson_interval`,
`design_effect`, `mcnemar_mid_p`, …), cells (`cell_table`), comparisons (`compare_pairs`) and
robustness. Nothing here decides: `margin.decide.scores.score_run` scores a run directory from
these pieces, then ranks and recommends.
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
    rate_interval,
    straight_passes_to_cross,
    wilson_interval,
)

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
