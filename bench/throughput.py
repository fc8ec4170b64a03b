"""Throughput of margin's runner against the ideal and a bare litellm loop, in the same run.

    python bench/throughput.py [--attempts 2000] [--latency 0.2]

Starts its own OpenAI-compatible server on 127.0.0.1 (a separate process) answering after
`--latency` seconds. For concurrency 20 and 100 it runs N attempts through margin's Runner
(retries, limits, validators, journal, cache writes) and through a bare
`litellm.acompletion` + semaphore loop, and prints wall time ÷ ideal
(ideal = attempts × latency ÷ concurrency) and margin ÷ bare. Then it re-runs the same
attempts from the cache. Exits 1 when a target is missed:
  at concurrency 20: margin ≤ 1.15 × ideal; at both: margin ≤ 1.10 × bare;
  cache-hit re-run ≥ 2,000 attempts/s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from margin.config import ModelSpec, RunSettings
from margin.journal import Journal
from margin.plan import build_plan
from margin.providers.gateway import close_clients, litellm_module
from margin.suite import Suite
from margin.workers import choose_workers, execute

CASES = 100


def bench_suite() -> Suite:
    """One routing-like task with CASES cases; repeats make up the attempt count."""
    return Suite.model_validate(
        {
            "suite": "bench",
            "target": 0.9,
            "tasks": [
                {
                    "id": "route",
                    "prompt": "Route this message to billing or shipping: {{ message }}",
                    "cases": [
                        {"id": f"c{i}", "vars": {"message": f"Parcel {i} is late"}}
                        for i in range(CASES)
                    ],
                    "validators": [{"choice": ["billing", "shipping"]}, {"max_words": 3}],
                }
            ],
        }
    )


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "margin.providers.fake_server",
            "--latency",
            str(latency),
            "--default",
            "shipping",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the fake server did not start: {url!r}")
    return proc, url


async def bare_loop(url: str, attempts: int, concurrency: int) -> float:
    """The peer: litellm.acompletion under a semaphore, nothing else."""
    litellm = litellm_module()
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await litellm.acompletion(
                model="openai/bench",
                messages=[{"role": "user", "content": f"Route this message: Parcel {i} is late"}],
                api_base=url,
                api_key="sk-bench",
                max_retries=0,
                timeout=30,
                max_tokens=8,
                temperature=0.0,
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(attempts)))
    elapsed = time.perf_counter() - started
    await close_clients()
    return elapsed


def margin_run(
    url: str,
    attempts: int,
    concurrency: int,
    folder: Path,
    cache_dir: Path,
    executor: str = "local",
) -> float:
    """margin's own path (as `margin run` takes it): plan, workers, runner, journal, cache."""
    model = ModelSpec(
        name="bench",
        model="openai/bench",
        api_base=url,
        concurrency=concurrency,
        timeout=30,
        price={"input_per_mtok": 0.1, "output_per_mtok": 0.2},  # type: ignore[arg-type]
    )
    settings = RunSettings(
        repeats=attempts // CASES,
        concurrency=concurrency,
        paraphrases=False,
        executor=executor,  # type: ignore[arg-type]
    )
    plan = build_plan([bench_suite()], [model], settings)
    assert len(plan) == attempts
    with Journal(folder / "journal.jsonl") as journal:
        started = time.perf_counter()
        stats = execute(plan.attempts, settings, journal, cache_dir=cache_dir)
        elapsed = time.perf_counter() - started
    assert stats.done == attempts and stats.infra_errors == 0, stats
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--ray", action="store_true", help="also run the Ray executor (a local instance)"
    )
    args = parser.parse_args()
    server, url = start_server(args.latency)
    failures: list[str] = []
    try:
        asyncio.run(bare_loop(url, 40, 20))  # warm up litellm's clients and imports
        workers = choose_workers(
            build_plan(
                [bench_suite()],
                [ModelSpec(name="b", model="openai/bench", concurrency=20)],
                RunSettings(repeats=args.attempts // CASES, paraphrases=False),
            ).attempts,
            RunSettings(concurrency=20),
        )
        print(
            f"{args.attempts} attempts, server latency {args.latency * 1000:.0f} ms, loopback;"
            f" margin uses {workers} worker process(es) (auto)"
        )
        print(
            f"{'concurrency':>11} {'ideal s':>8} {'bare s':>7} {'margin s':>8} "
            f"{'margin/ideal':>12} {'margin/bare':>11} {'margin att/s':>12}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in (20, 100):
                folder = Path(tmp) / f"c{concurrency}"
                folder.mkdir()
                ideal = args.attempts * args.latency / concurrency
                bare = asyncio.run(bare_loop(url, args.attempts, concurrency))
                ours = margin_run(url, args.attempts, concurrency, folder / "run", folder / "cache")
                print(
                    f"{concurrency:>11} {ideal:>8.2f} {bare:>7.2f} {ours:>8.2f} "
                    f"{ours / ideal:>12.3f} {ours / bare:>11.3f} {args.attempts / ours:>12.0f}"
                )
                if concurrency == 20 and ours / ideal > 1.15:
                    failures.append(f"concurrency 20: {ours / ideal:.3f} × ideal > 1.15")
                if ours / bare > 1.10:
                    failures.append(f"concurrency {concurrency}: {ours / bare:.3f} × bare > 1.10")
                if args.ray:
                    from margin.ray_executor import start

                    start(None)  # started once, outside the timing, as a cluster would be
                    ray = margin_run(
                        url, args.attempts, concurrency, folder / "ray", folder / "rcache", "ray"
                    )
                    print(
                        f"{'':>11} Ray executor (local instance): {ray:.2f} s,"
                        f" {ray / ideal:.3f} × ideal, {ray / ours:.3f} × margin's pool"
                    )
                if concurrency == 100:
                    hits = margin_run(
                        url, args.attempts, concurrency, folder / "hits", folder / "cache"
                    )
                    rate = args.attempts / hits
                    print(
                        f"cache-hit re-run: {hits:.2f} s, {rate:,.0f} attempts/s (target ≥ 2,000)"
                    )
                    if rate < 2000:
                        failures.append(f"cache hits: {rate:,.0f} attempts/s < 2,000")
    finally:
        server.kill()
        server.communicate()
    for failure in failures:
        print(f"MISSED: {failure}")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
