"""margin's own litellm custom providers: `fake/<name>` and `local/<name>`."""

from __future__ import annotations

from typing import Any

from margin.providers.fake import fake_handler
from margin.providers.local import local_handler


def custom_providers() -> list[dict[str, Any]]:
    """Items for `litellm.custom_provider_map` (litellm is already imported by the caller)."""
    return [
        {"provider": "fake", "custom_handler": fake_handler()},
        {"provider": "local", "custom_handler": local_handler()},
    ]
