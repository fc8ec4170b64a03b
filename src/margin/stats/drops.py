"""Does noise make a model worse? A paired test of each noise level against the clean prompt.

Crossing a target needs many cases (36 straight passes at 0.9); telling that a model got worse
under typos needs far fewer, because each noisy attempt has a clean twin — the same case, the
same wording and repeat, without the noise. The test is the one-sided exact McNemar test on
the discordant twins (clean passed and noisy failed = a loss; the reverse = a gain), after
dividing the counts by the design effect of the paired differences clustered by case, with
Holm's correction across the levels of one axis (model × task × noise kind).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from margin.stats.compare import ALPHA, difference_deff, holm
from margin.stats.intervals import one_sided_mcnemar

TWIN = ["model", "suite", "task", "case", "paraphrase", "repeat"]
"""What a noisy attempt shares with its clean twin."""
AXIS = ["model", "suite", "task", "noise_kind"]
DROP_COLUMNS = [*AXIS, "noise_level", "pairs", "losses", "gains", "p_value", "p_holm",
                "significant"]  # fmt: skip


def drop_tests(frame: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per model × task × noise kind × level: twins judged, losses, gains, the one-sided
    p-value that the noisy prompt passes less often than the clean one, Holm's adjustment
    across the axis's levels, and whether the drop is significant at `alpha`."""
    judged = frame[frame["judged"]]
    clean = judged.loc[judged["noise_kind"] == "clean", [*TWIN, "passed"]]
    noisy = judged.loc[judged["noise_kind"] != "clean", [*TWIN, "noise_kind", "noise_level",
                                                         "passed"]]  # fmt: skip
    twins = noisy.merge(clean, on=TWIN, suffixes=("", "_clean"))
    if twins.empty:
        return pd.DataFrame(columns=DROP_COLUMNS)
    rows = []
    for key, group in twins.groupby([*AXIS, "noise_level"], observed=True, sort=True):
        now, before = group["passed"].to_numpy(), group["passed_clean"].to_numpy()
        diff = before - now
        case = group["case"].astype(str).to_numpy()
        deff = difference_deff(diff, case)
        losses, gains = float(np.sum(diff > 0)), float(np.sum(diff < 0))
        p_value = float(one_sided_mcnemar(losses / deff, gains / deff))
        rows.append([*key, len(group), int(losses), int(gains), p_value])
    table = pd.DataFrame(rows, columns=DROP_COLUMNS[:-2])
    adjusted = np.empty(len(table))
    for _, index in table.groupby(AXIS, observed=True, sort=False).groups.items():
        positions = table.index.get_indexer(index)
        adjusted[positions] = holm(table["p_value"].to_numpy()[positions])
    return table.assign(p_holm=adjusted, significant=adjusted <= alpha)


def first_drops(tests: pd.DataFrame) -> pd.DataFrame:
    """Per model × task × noise kind: the lowest level at which the drop is significant
    (`drops_at`, NaN when none is), beside the highest level tried."""
    if tests.empty:
        return pd.DataFrame(columns=[*AXIS, "drops_at"])
    significant = tests[tests["significant"].astype(bool)]
    lowest = significant.groupby(AXIS, observed=True)["noise_level"].min().rename("drops_at")
    every = tests[AXIS].drop_duplicates()
    return every.merge(lowest.reset_index(), on=AXIS, how="left")


def with_drops(margins: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The margins table (model × task × `axis`) with each axis's `drops_at`."""
    first = first_drops(tests).rename(columns={"noise_kind": "axis"})
    keys = ["model", "suite", "task", "axis"]
    if first.empty:
        return margins.assign(drops_at=np.nan)
    return margins.merge(first.astype({k: str for k in keys}), on=keys, how="left")


def with_tests(drops: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The noise-drop table with each level's paired test (pairs, losses, gains, p-values,
    significant)."""
    keys = [*AXIS, "noise_level"]
    if tests.empty:
        return drops.assign(pairs=0, losses=0, gains=0, p_value=np.nan, p_holm=np.nan,
                            significant=False)  # fmt: skip
    typed = tests.astype({k: str for k in AXIS})
    return drops.astype({k: str for k in AXIS}).merge(typed, on=keys, how="left")
