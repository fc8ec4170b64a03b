"""Prices per token (and per second of serving): the config's override, else litellm's bundled
price map.

The map is read from the JSON file litellm ships, found without importing litellm (which takes
seconds and may reach for the network), so `margin plan` stays fast and offline.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from margin.config import ModelSpec

LOCAL_PROVIDERS = frozenset({"local", "fake", "ollama", "ollama_chat"})
"""Providers that run on the user's own machine: price 0 unless the config says otherwise."""


@dataclass(frozen=True)
class TokenPrice:
    """Dollars per token; `known` is False when neither the config nor the map has a price."""

    input: float
    output: float
    known: bool = True
    source: str = "litellm price map"
    per_second: float = 0.0
    """Dollars per second of a call (a self-hosted model's serving price)."""

    def cost(self, input_tokens: float, output_tokens: float, seconds: float = 0.0) -> float:
        """Dollars for a call of these token counts that took `seconds`."""
        return input_tokens * self.input + output_tokens * self.output + seconds * self.per_second


@lru_cache(maxsize=1)
def _price_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "model_prices_and_context_window_backup.json"
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def price_for(model: ModelSpec) -> TokenPrice:
    """The price of one token in and out for `model`."""
    if model.price is not None:
        price = model.price
        return TokenPrice(
            price.input_per_mtok / 1e6,
            price.output_per_mtok / 1e6,
            source="nominal" if price.nominal else "config",
            per_second=price.per_second,
        )
    if model.provider in LOCAL_PROVIDERS or (model.api_base or "").startswith(
        ("http://127.", "http://localhost", "http://[::1]")
    ):
        return TokenPrice(0.0, 0.0, source="local")
    prices = _price_map()
    bare = model.model.split("/", 1)[1] if "/" in model.model else model.model
    for key in (model.model, bare):
        entry = prices.get(key)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            given = _dollars(entry.get("input_cost_per_token"))
            answered = _dollars(entry.get("output_cost_per_token"))
            if given is None or answered is None:
                break  # not a price: a capped run asks the config for one
            return TokenPrice(given, answered)
    return TokenPrice(0.0, 0.0, known=False, source="unknown")


def _dollars(value: object) -> float | None:
    """A price from the map as dollars per token (a missing one is 0), or None when it is not
    a finite number of 0 or more."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
