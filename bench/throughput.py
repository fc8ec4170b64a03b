"""Throughput of margin's runner against the ideal and a bare litellm loop, in the same run.

    python bench/throughput.py [--attempts 2000] [--latency 0.2] [--rounds 3] [--ray]

Starts its own OpenAI-compatible server on 127.0.0.1 (a separate process) answering after
`--latency` seconds. For concurrency 50 and 100 it runs N attempts, each run in a fresh Python
process, interleaved round by round: margin's path as `margin run` takes it (plan, worker pool,
runner with retries, limits, validators, journal and cache writes) and the peer, a bare
`litellm.acompletion` + semaphore loop. It prints the median wall time of the calls (÷ ideal,
ideal = attempts × latency ÷ concurrency, and margin ÷ bare) and the CPU of each process tree
per attempt, start-up included (interpreter, imports, worker processes), and once per concurrency
a control: the same requests by a raw aiohttp client, no litellm (what server and loopback allow).
Then it re-runs the same attempts from margin's cache in a fresh process. Last, the targets;
exits 1 when one is missed:
  margin ÷ bare wall ≤ 0.75 at concurrency 50 and at 100;
  margin's CPU per attempt (whole process tree, start-up included) ≤ 7 ms;
  cache-hit re-run ≥ 10,000 attempts/s, with litellm never imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bare import bare_calls  # bench/, beside this script

from margin.config import ModelSpec, RunSettings
from margin.execute.executors import execute
from margin.execute.executors.pool import choose_workers
from margin.journal.records import Journal
from margin.plan import build_plan
from margin.providers.gateway import close_clients, litellm_module
from margin.suite.tasks import Suite

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
    """The peer: litellm.acompletion under a semaphore, nothing else (`bare.bare_calls`)."""
    text = "Route this message: Parcel {i} is late"
    first, last = await bare_calls(litellm_module(), url, attempts, concurrency, text)
    await close_clients()
    return last - first


async def raw_loop(url: str, attempts: int, concurrency: int) -> float:
    """The control: the same requests by a bare aiohttp client, no litellm (what the server and
    loopback allow; no product may take this path — every margin call goes through litellm)."""
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            async with slots:
                body = {
                    "model": "bench", "max_tokens": 8, "temperature": 0.0,
                    "messages": [{"role": "user", "content": f"Route this message: Parcel {i}"}],
                }  # fmt: skip
                async with session.post(f"{url}/chat/completions", json=body) as answer:
                    await answer.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(attempts)))
        return time.perf_counter() - started


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


def child(argv: list[str]) -> int:
    """One measured run in this fresh process (`bare`, `margin`, or `hits`: margin again on a
    filled cache); prints its wall time and whether litellm was imported, as JSON."""
    kind, url, attempts, concurrency, folder = argv
    if kind == "bare":
        wall = asyncio.run(bare_loop(url, int(attempts), int(concurrency)))
    elif kind == "raw":
        wall = asyncio.run(raw_loop(url, int(attempts), int(concurrency)))
    else:
        if kind == "margin":  # outside the clock, as the bare loop imports it (CPU counts both)
            litellm_module()
        path = Path(folder)
        wall = margin_run(url, int(attempts), int(concurrency), path / "run", path / "cache")
    print(json.dumps({"wall": wall, "litellm": "litellm" in sys.modules}))
    return 0


def measured(
    kind: str, url: str, attempts: int, concurrency: int, folder: Path
) -> dict[str, float]:
    """Run `kind` in a fresh process: its wall time and its process tree's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, url, str(attempts), str(concurrency),
         str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} run failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": result["wall"], "cpu": cpu, "litellm": float(result["litellm"])}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs; medians shown")
    parser.add_argument(
        "--ray", action="store_true", help="also run the Ray executor (a local instance)"
    )
    args = parser.parse_args()
    server, url = start_server(args.latency)
    failures: list[str] = []
    n = args.attempts
    try:
        workers = choose_workers(
            build_plan(
                [bench_suite()],
                [ModelSpec(name="b", model="openai/bench", concurrency=50)],
                RunSettings(repeats=n // CASES, paraphrases=False),
            ).attempts,
            RunSettings(concurrency=50),
        )
        print(
            f"{n} attempts, server latency {args.latency * 1000:.0f} ms, loopback;"
            f" margin uses {workers} worker process(es) (auto); median of {args.rounds}"
            " interleaved runs, each in a fresh process"
        )
        print(
            f"{'concurrency':>11} {'ideal s':>8} {'bare s':>7} {'margin s':>8} "
            f"{'margin/ideal':>12} {'margin/bare':>11} {'bare CPU ms/att':>15}"
            f" {'margin CPU ms/att':>17}"
        )
        ratios: dict[int, float] = {}
        cpu_ms: list[float] = []
        raws: dict[int, tuple[float, float]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in (50, 100):
                ideal = n * args.latency / concurrency
                bare, ours = [], []
                for round_ in range(args.rounds):
                    folder = Path(tmp) / f"c{concurrency}r{round_}"
                    bare.append(measured("bare", url, n, concurrency, folder))
                    ours.append(measured("margin", url, n, concurrency, folder))
                bare_s = statistics.median(r["wall"] for r in bare)
                ours_s = statistics.median(r["wall"] for r in ours)
                raw = measured("raw", url, n, concurrency, Path(tmp) / f"raw{concurrency}")
                raws[concurrency] = (raw["wall"], raw["cpu"] / n * 1000)
                bare_cpu = statistics.median(r["cpu"] for r in bare) / n * 1000
                ours_cpu = statistics.median(r["cpu"] for r in ours) / n * 1000
                ratios[concurrency] = ours_s / bare_s
                cpu_ms.append(ours_cpu)
                print(
                    f"{concurrency:>11} {ideal:>8.2f} {bare_s:>7.2f} {ours_s:>8.2f} "
                    f"{ours_s / ideal:>12.3f} {ours_s / bare_s:>11.3f} {bare_cpu:>15.2f}"
                    f" {ours_cpu:>17.2f}"
                )
                if args.ray:
                    from margin.execute.executors.ray import start

                    start(None)  # started once, outside the timing, as a cluster would be
                    folder = Path(tmp) / f"ray{concurrency}"
                    ray = margin_run(
                        url, n, concurrency, folder / "run", folder / "cache", "ray"
                    )  # fmt: skip
                    print(
                        f"{'':>11} Ray executor (local instance): {ray:.2f} s,"
                        f" {ray / ideal:.3f} × ideal, {ray / ours_s:.3f} × margin's pool"
                    )
            hit_runs = [
                measured("hits", url, n, 100, Path(tmp) / f"c100r{round_}")
                for round_ in range(args.rounds)
            ]  # each round's margin run at 100 filled its own cache
        hits = {
            "wall": statistics.median(r["wall"] for r in hit_runs),
            "litellm": max(r["litellm"] for r in hit_runs),
        }
        rate = n / hits["wall"]
        print(
            f"cache-hit re-run (fresh process, median of {args.rounds}): {hits['wall']:.3f} s,"
            f" {rate:,.0f} attempts/s, litellm imported: {'yes' if hits['litellm'] else 'no'}"
        )
    finally:
        server.kill()
        server.communicate()
    for concurrency, (wall, cpu) in raws.items():
        print(
            f"control at {concurrency}: a raw aiohttp client (no litellm) {wall:.2f} s,"
            f" {cpu:.2f} ms CPU per call (process start-up included)"
        )
    worst_cpu = max(cpu_ms)
    print("targets:")
    for concurrency, ratio in ratios.items():
        print(f"  margin ÷ bare wall at {concurrency}: {ratio:.3f} (target ≤ 0.75)")
        if ratio > 0.75:
            failures.append(f"margin ÷ bare at {concurrency}: {ratio:.3f} > 0.75")
    print(f"  margin CPU per attempt, whole tree: {worst_cpu:.2f} ms (target ≤ 7)")
    if worst_cpu > 7:
        failures.append(f"CPU per attempt {worst_cpu:.2f} ms > 7")
    print(f"  cache hits: {rate:,.0f} attempts/s (target ≥ 10,000), litellm never imported")
    if rate < 10_000:
        failures.append(f"cache hits: {rate:,.0f} attempts/s < 10,000")
    if hits["litellm"]:
        failures.append("the cache-hit run imported litellm")
    for failure in failures:
        print(f"MISSED: {failure}")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
