"""The peer both throughput benches time margin against: `litellm.acompletion` under a
semaphore, nothing else. No margin import here: `whole_command.py` times this as a bare script."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def bare_calls(
    litellm: Any, url: str, calls: int, concurrency: int, text: str
) -> tuple[float, float]:
    """`calls` one-turn calls to the OpenAI-compatible server at `url`, `concurrency` in
    flight, the i-th asking `text` with `{i}` filled in; when the first was sent and the last
    answered (`time.time()`)."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await litellm.acompletion(
                model="openai/bench",
                messages=[{"role": "user", "content": text.format(i=i)}],
                api_base=url,
                api_key="sk-bench",
                max_retries=0,
                timeout=30,
                max_tokens=8,
                temperature=0.0,
            )

    first = time.time()
    await asyncio.gather(*(one(i) for i in range(calls)))
    return first, time.time()
