"""How many repeats each round of a run reaches: one round of `repeats`, or an adaptive run's
growing rounds up to its cap (`margin.execute.adaptive` decides, between them, which cells go
on). Pandas-free: planning a run needs it, only an adaptive run's decisions need statistics."""

from __future__ import annotations

import math

from margin.config import RunSettings

FIRST_ROUND = 2
GROWTH = 1.5


def planned_settings(settings: RunSettings) -> RunSettings:
    """The settings a run is planned with: an adaptive run's plan holds every repeat up to its
    cap (its rounds run them in turn); any other run's, its settings as they are."""
    if not settings.adaptive:
        return settings
    return settings.model_copy(update={"repeats": settings.max_repeats})


def round_sizes(cap: int) -> list[int]:
    """Repeats reached after each round: 2, 3, 5, 8, 12, … capped."""
    sizes = [min(FIRST_ROUND, cap)]
    while sizes[-1] < cap:
        sizes.append(min(cap, max(sizes[-1] + 1, math.ceil(sizes[-1] * GROWTH))))
    return sizes
