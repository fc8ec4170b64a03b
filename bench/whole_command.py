"""The whole `margin run` command, start to exit, against a bare litellm loop in the same run.

    python bench/whole_command.py [--calls 2000] [--concurrency 50] [--latency 0.2] [--rounds 3]

A loopback OpenAI-compatible server (margin's fake server, in a thread of this process) answers
each call after `--latency` seconds. Each round runs, each in a fresh process and in alternating
order, (1) the control: `import litellm` and `litellm.acompletion` under a semaphore, nothing
else; (2) `margin run` of a one-task suite of `--calls` cases on one model (one turn each, an
empty cache, workers auto) — plan, calls, journal, scoring and the report, as a user gets it;
then `margin report` on that run and `margin --help`. It prints the medians of:
  wall         command start to exit, measured here around the process;
  eval span    first call sent to last answer in (margin: from its journal's timestamps);
  fixed        wall − eval span: start-up, loading, scoring, reporting;
  CPU ms/call  user + system CPU of the whole process tree ÷ calls;
  peak RSS     the command's own process (worker processes aside), read at its exit;
  child MB     the largest peak RSS of its child processes (margin: the starter that imports
               litellm and forks the workers, a worker, or the scorer that scores and reports
               the run, both forked before the calls);
and the ratios margin ÷ bare. Acceptance (issue 27): wall ratio ≤ 1.0, fixed ≤ bare's + 1 s,
`margin report` ≤ 1 s, `margin --help` ≤ 0.1 s, margin's peak RSS ≤ 250 MB. Exits 1 when one
is missed. Timings on a shared machine move together; compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bare import bare_calls  # bench/, beside this script

ROOT = Path(__file__).resolve().parents[1]
MARGIN_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "ERROR",
    "OPENAI_API_KEY": "sk-bench",
}
"""The environment of every measured process: litellm reads no remote price map in either."""


def _report_peak_rss(path: str) -> None:
    """At exit, write this process's own peak RSS in MB (children not included) and the largest
    of its ended children's (margin: the starter, a worker or the scorer) to `path`."""

    def write() -> None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        Path(path).write_text(f"{own / 1024:.1f} {child / 1024:.1f}")

    atexit.register(write)


def child_margin(rss_file: str, argv: list[str]) -> None:
    """`margin ARGV` in this process, exactly as the console script runs it."""
    _report_peak_rss(rss_file)
    sys.argv = ["margin", *argv]
    from margin.cli.main import main  # after the RSS hook: the command's imports are measured

    main()


def child_bare(rss_file: str, url: str, calls: int, concurrency: int) -> None:
    """The control: litellm.acompletion under a semaphore; prints its eval span as JSON."""
    _report_peak_rss(rss_file)
    import litellm  # the control's one dependency, imported as any script would

    first, last = asyncio.run(
        bare_calls(litellm, url, calls, concurrency, "Route: Parcel {i} is late")
    )
    print(json.dumps({"span": last - first}))


def write_inputs(folder: Path, url: str, calls: int, concurrency: int) -> tuple[Path, Path]:
    """A one-task suite of `calls` cases whose answer passes, and a one-model config."""
    cases = "".join(
        f'      - id: c{i}\n        vars: {{message: "Parcel {i} is late"}}\n' for i in range(calls)
    )
    suite = folder / "bench.yaml"
    suite.write_text(
        "suite: bench\ntarget: 0.9\ntasks:\n  - id: route\n"
        '    prompt: "Route this message to billing or shipping: {{ message }}"\n'
        f"    cases:\n{cases}"
        "    validators:\n      - choice: [billing, shipping]\n      - max_words: 3\n"
    )
    models = folder / "models.yaml"
    models.write_text(
        "models:\n  - name: bench\n    model: openai/bench\n"
        f"    api_base: {url}\n    concurrency: {concurrency}\n    timeout: 30\n"
    )
    return suite, models


def measure(
    argv: list[str], rss_file: Path, src: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, float | str]:
    """Run `argv` in a fresh process (margin imported from `src` when given): wall, the tree's
    CPU, its own peak RSS, its stdout."""
    env = {**os.environ, **MARGIN_ENV, **({"PYTHONPATH": src} if src else {}), **(extra or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    own, child = rss_file.read_text().split() if rss_file.exists() else ("nan", "nan")
    return {
        "wall": wall,
        "cpu": cpu,
        "rss": float(own),
        "child_rss": float(child),
        "stdout": done.stdout,
    }


def journal_span(run_dir: Path) -> float:
    """First call sent to last answer in, from the journal's timestamps."""
    starts, ends = [], []
    with (run_dir / "journal.jsonl").open(encoding="utf-8") as journal:
        for line in journal:
            record = json.loads(line)
            starts.append(datetime.fromisoformat(record["started_at"]))
            ends.append(datetime.fromisoformat(record["finished_at"]))
    return (max(ends) - min(starts)).total_seconds()


def one_round(args: argparse.Namespace, url: str, folder: Path, index: int) -> dict[str, dict]:
    """The bare loop and `margin run` (and the `--before` tree's), in an order that rotates
    each round; then `margin report` on each margin run and `margin --help`."""
    folder.mkdir(parents=True)
    suite, models = write_inputs(folder, url, args.calls, args.concurrency)
    me = [sys.executable, str(Path(__file__).resolve())]
    trees = {"": None, **({"before ": args.before} if args.before else {})}
    kinds = ["bare", *(f"{label}margin" for label in trees)]
    kinds = kinds[index % len(kinds) :] + kinds[: index % len(kinds)]
    results: dict[str, dict] = {}
    for kind in kinds:
        if kind == "bare":
            argv = [*me, "--bare", str(folder / "bare.rss"), url, str(args.calls)]
            bare = measure([*argv, str(args.concurrency)], folder / "bare.rss")
            bare["span"] = json.loads(str(bare["stdout"]).strip().splitlines()[-1])["span"]
            results["bare"] = bare
            continue
        label = kind.removesuffix("margin")
        run_dir = folder / f"run{label.strip()}"
        rss = folder / f"{label.strip()}margin.rss"
        argv = [*me, "--margin", str(rss), "run", str(suite), "--models", str(models)]
        argv += ["--out", str(run_dir), "--repeats", "1", "--concurrency", str(args.concurrency)]
        cache = {"MARGIN_CACHE_DIR": str(folder / f"cache-{label.strip()}")}  # empty: all calls
        results[kind] = measure(argv, rss, trees[label], cache)
        results[kind]["span"] = journal_span(run_dir)
    for label, src in trees.items():
        run_dir = folder / f"run{label.strip()}"
        rss = folder / "report.rss"
        argv = [*me, "--margin", str(rss), "report", str(run_dir)]
        results[f"{label}report"] = measure(argv, rss, src)
        results[f"{label}help"] = measure([*me, "--margin", str(rss), "--help"], rss, src)
    return results


def summary(rounds: list[dict[str, dict]], calls: int) -> dict[str, dict[str, float]]:
    """Median of each figure per kind; fixed = wall − eval span, CPU per call in ms."""
    out: dict[str, dict[str, float]] = {}
    for kind in rounds[0]:
        runs = [r[kind] for r in rounds]
        figures = {
            "wall": statistics.median(float(r["wall"]) for r in runs),
            "cpu_ms_per_call": statistics.median(float(r["cpu"]) for r in runs) / calls * 1000,
            "rss": statistics.median(float(r["rss"]) for r in runs),
            "child_rss": statistics.median(float(r["child_rss"]) for r in runs),
        }
        if "span" in runs[0]:
            figures["span"] = statistics.median(float(r["span"]) for r in runs)
            figures["fixed"] = statistics.median(float(r["wall"]) - float(r["span"]) for r in runs)
        out[kind] = figures
    return out


def targets(m: dict[str, dict[str, float]]) -> list[tuple[str, float, float]]:
    """(what, measured, limit, met) for each acceptance figure."""
    bare, ours = m["bare"], m["margin"]
    return [
        ("margin run wall ÷ bare wall", ours["wall"] / bare["wall"], 1.0),
        ("margin fixed − bare fixed, s", ours["fixed"] - bare["fixed"], 1.0),
        ("margin report wall, s", m["report"]["wall"], 1.0),
        ("margin --help wall, s", m["help"]["wall"], 0.1),
        ("margin run peak RSS, MB", ours["rss"], 250.0),
    ]


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--margin":
        child_margin(sys.argv[2], sys.argv[3:])
        return 0
    if len(sys.argv) > 2 and sys.argv[1] == "--bare":
        rss, url, calls, concurrency = sys.argv[2:6]
        child_bare(rss, url, int(calls), int(concurrency))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians")
    parser.add_argument(
        "--before", metavar="SRC", help="also time margin imported from this src/ folder"
    )
    args = parser.parse_args()
    # The server is margin's own test double: imported here, not by the measured processes.
    from margin.providers.fake_server import serve_in_thread
    from margin.providers.scripts import Script

    rounds = []
    with (
        serve_in_thread(Script(default="shipping", latency_s=args.latency)) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for index in range(args.rounds):
            rounds.append(one_round(args, url, Path(tmp) / f"r{index}", index))
            walls = ", ".join(f"{k} {v['wall']:.2f} s" for k, v in rounds[-1].items())
            print(f"round {index + 1}: {walls}; load {os.getloadavg()[0]:.1f}", flush=True)
    return print_summary(summary(rounds, args.calls), args)


def print_summary(m: dict[str, dict[str, float]], args: argparse.Namespace) -> int:
    print(
        f"{args.calls} one-turn calls, {args.concurrency} in flight, {args.latency * 1000:.0f} ms"
        f" answers from a loopback server; median of {args.rounds} interleaved rounds, each"
        f" command in a fresh process (load average now {os.getloadavg()[0]:.1f} on"
        f" {os.cpu_count()} cores)"
    )
    print(
        f"{'':<24} {'wall s':>7} {'eval s':>7} {'fixed s':>8} {'CPU ms/call':>11} {'RSS MB':>7}"
        f" {'child MB':>8}"
    )
    labels = [("", "")] + ([("before ", " (before)")] if args.before else [])
    for kind, label in [
        ("bare", "bare litellm"),
        *((f"{k}margin", f"margin run{n}") for k, n in labels),
    ]:
        f = m[kind]
        print(
            f"{label:<24} {f['wall']:>7.2f} {f['span']:>7.2f} {f['fixed']:>8.2f}"
            f" {f['cpu_ms_per_call']:>11.2f} {f['rss']:>7.0f} {f['child_rss']:>8.0f}"
        )
    for prefix, name in labels:
        for kind, label in (
            (f"{prefix}report", "margin report"),
            (f"{prefix}help", "margin --help"),
        ):
            f = m[kind]
            print(f"{label + name:<24} {f['wall']:>7.2f} {'':>7} {'':>8} {'':>11} {f['rss']:>7.0f}")
    bare, ours = m["bare"], m["margin"]
    print(
        f"margin ÷ bare: wall {ours['wall'] / bare['wall']:.3f}, eval span"
        f" {ours['span'] / bare['span']:.3f}, CPU/call"
        f" {ours['cpu_ms_per_call'] / bare['cpu_ms_per_call']:.3f},"
        f" RSS {ours['rss'] / bare['rss']:.3f}"
    )
    missed = 0
    for what, value, limit in targets(m):
        met = value <= limit
        missed += not met
        print(f"  {what}: {value:.3f} (target ≤ {limit:g}){'' if met else '  MISSED'}")
    print("all targets met" if not missed else f"{missed} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
