"""Local models: margin's provider path against xllamacpp's own speed, and `parallel` batching.

    python bench/local_speed.py [--models configs/local.yaml] [--rounds 3] [--max-tokens 64]
                                [--parallel 4] [--requests 8]

For each local model of the config, the same GGUF and the same prompt (temperature 0, one seed,
so both paths generate the same tokens), interleaved round by round:
  runtime:  xllamacpp's `Server.handle_chat_completions` called directly;
  provider: margin's path, `gateway.complete` → litellm → margin's `local/` provider → the same
            loaded Server in a worker thread.
Tokens/s is output tokens ÷ wall time of the call (prompt processing included in both); the
median of the rounds is shown. Then, per model, `--requests` different prompts through the
provider path one at a time (`parallel: 1`) and with `parallel: N` (continuous batching in one
llama.cpp instance): total output tokens ÷ wall time, and the gain.
Last, the target; exits 1 when a model's provider ÷ runtime is below 0.90.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from margin.config import ModelSpec, load_models
from margin.providers.gateway import close_clients, complete
from margin.providers.local import load

PROMPT = "Explain in a short paragraph why the sea is salty."
TOPICS = ["the sea", "bread", "a bicycle", "the moon", "rain", "a library", "coffee", "trains"]
SEED = 7


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def runtime_call(name: str, max_tokens: int) -> tuple[int, float]:
    """xllamacpp alone: output tokens and seconds."""
    server = load(name)
    request: dict[str, Any] = {
        "messages": messages(PROMPT), "temperature": 0.0, "seed": SEED, "max_tokens": max_tokens,
    }  # fmt: skip
    started = time.perf_counter()
    answer = server.handle_chat_completions(request)
    took = time.perf_counter() - started
    return int(answer["usage"]["completion_tokens"]), took


async def provider_call(model: ModelSpec, max_tokens: int) -> tuple[int, float]:
    """margin's path through litellm: output tokens and seconds (measured outside it)."""
    started = time.perf_counter()
    done = await complete(model, messages(PROMPT), seed=SEED, max_tokens=max_tokens, api_key=None)
    took = time.perf_counter() - started
    return done.output_tokens, took


async def many(model: ModelSpec, prompts: list[str], max_tokens: int) -> tuple[int, float]:
    """`prompts` through the provider path at once (the runner's core room admits `parallel`
    of them together; here a semaphore of the same size does): total tokens and seconds."""
    slots = asyncio.Semaphore(model.parallel or 1)

    async def one(prompt: str) -> int:
        async with slots:
            done = await complete(
                model, messages(prompt), seed=SEED, max_tokens=max_tokens, api_key=None
            )
            return done.output_tokens

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(p) for p in prompts))
    took = time.perf_counter() - started
    await close_clients()
    return sum(tokens), took


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", default="configs/local.yaml")
    parser.add_argument("--only", action="append", help="only these model names (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    models = [
        m
        for m in load_models(Path(args.models))
        if m.provider == "local" and (not args.only or m.name in args.only)
    ]
    if not models:
        print("no local model in the config", file=sys.stderr)
        return 2
    print(
        f"prompt: {PROMPT!r}, temperature 0, seed {SEED}, max_tokens {args.max_tokens};"
        f" median of {args.rounds} interleaved rounds"
    )
    print(f"{'model':>14} {'tokens':>6} {'runtime tok/s':>13} {'provider tok/s':>14} {'ratio':>6}")
    ratios: dict[str, float] = {}
    gains: dict[str, float] = {}
    for model in models:
        name = model.model.split("/", 1)[1]
        load(name, 1)
        runtime_call(name, args.max_tokens)  # warm: the first call pays for buffers
        asyncio.run(provider_call(model, args.max_tokens))  # and litellm's first-call imports
        runtime, provider = [], []
        for _ in range(args.rounds):
            tokens, took = runtime_call(name, args.max_tokens)
            runtime.append(tokens / took)
            tokens_p, took_p = asyncio.run(provider_call(model, args.max_tokens))
            provider.append(tokens_p / took_p)
            if tokens_p != tokens:
                print(f"  note: {model.name}: {tokens_p} tokens via margin, {tokens} alone")
        ratio = statistics.median(provider) / statistics.median(runtime)
        ratios[model.name] = ratio
        print(
            f"{model.name:>14} {tokens:>6} {statistics.median(runtime):>13.1f}"
            f" {statistics.median(provider):>14.1f} {ratio:>6.3f}"
        )
    if args.parallel > 1:
        print(
            f"\nthroughput, {args.requests} different prompts through the provider path"
            f" (max_tokens {args.max_tokens}):"
        )
        print(f"{'model':>14} {'parallel: 1 tok/s':>17} {f'parallel: {args.parallel} tok/s':>17}"
              f" {'gain':>6}")  # fmt: skip
        prompts = [f"Explain in a short paragraph {t}." for t in TOPICS]
        prompts = (prompts * (args.requests // len(prompts) + 1))[: args.requests]
        for model in models:
            name = model.model.split("/", 1)[1]
            rates = []
            for parallel in (1, args.parallel):
                spec = model.model_copy(update={"parallel": parallel, "concurrency": parallel})
                load(name, parallel)
                tokens, took = asyncio.run(many(spec, prompts, args.max_tokens))
                rates.append(tokens / took)
            gains[model.name] = rates[1] / rates[0]
            print(f"{model.name:>14} {rates[0]:>17.1f} {rates[1]:>17.1f} {gains[model.name]:>6.2f}")
    print("targets:")
    failures = []
    for name, ratio in ratios.items():
        print(f"  {name}: provider ÷ runtime {ratio:.3f} (target ≥ 0.90)")
        if ratio < 0.90:
            failures.append(name)
    for failure in failures:
        print(f"MISSED: {failure} provider ÷ runtime below 0.90")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
