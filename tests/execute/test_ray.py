"""`margin run --executor ray` on a local Ray instance started by the test (loopback only)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from margin.errors import UserError
from margin.execute.executors.ray import ray_module
from margin.journal.records import read_journal
from margin.providers.scripts import Script
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, loopback, server_stats
from tests.execute.held_calls import (
    HeldCalls,
    beside_the_run,
    client_pid,
    descendants,
    kill_and_wait,
    wait_until,
)

try:  # imported as `margin run` imports it: first through margin, so it stays on loopback
    ray = ray_module()
except UserError:
    pytest.skip("Ray is not installed", allow_module_level=True)
ROUTING = str(SUITES / "routing.yaml")
CALL_TIMEOUT_S = 5.0
"""The test model's call timeout: the longest its provider works on a call (a dead worker's too)."""


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    from margin.execute.executors.ray import start

    os.environ["LOOP_KEY"] = "sk-loop-test"  # the workers inherit the environment at start
    start(None)
    yield
    ray.shutdown()


def models(tmp_path: Path, url: str, concurrency: int = 4, timeout: float = 60) -> Path:
    spec = {
        "name": "loop", "model": "openai/fake", "api_base": url, "api_key": "${LOOP_KEY}",
        "timeout": timeout, "concurrency": concurrency,
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
    }  # fmt: skip
    path = tmp_path / "models.yaml"
    run = {"noise": False, "backoff_s": 0.01, "backoff_max_s": 0.05}
    path.write_text(json.dumps({"models": [spec], "run": run}))
    return path


def run(config: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = run_cli(
        "run", ROUTING, "--models", str(config), "--out", str(out), "--no-cache", *extra
    )  # fmt: skip
    return result.exit_code, result.output


def listening_on(pids: set[int]) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp and tcp6 write them) where `pids` listen."""
    inodes = set()
    for pid in pids:
        with suppress(OSError):
            for fd in (Path("/proc") / str(pid) / "fd").iterdir():
                with suppress(OSError):
                    inodes.add(os.readlink(fd).removeprefix("socket:[").removesuffix("]"))
    found = set()
    for table in ("tcp", "tcp6"):
        for line in (Path("/proc/net") / table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1].rsplit(":", 1)[0])
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
"""127.0.0.1, as IPv4, as IPv4 mapped into IPv6, and ::1."""


def test_the_local_instance_listens_on_loopback_only() -> None:
    ray_processes = descendants(os.getpid())  # the GCS and the raylet, its workers below it
    assert ray_processes and {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    assert listening_on(ray_processes) and listening_on(ray_processes) <= LOOPBACK


def journal_lines(folder: Path) -> int:
    path = folder / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def verdicts(folder: Path) -> dict[str, bool | None]:
    return {r.key: r.passed for r in read_journal(folder / "journal.jsonl")}


@pytest.mark.timing
def test_ray_gives_the_inline_runs_keys_and_verdicts_within_a_cluster_wide_limit(
    tmp_path,
) -> None:
    script = Script(rules=ROUTING_RULES[:3], default="account", latency_s=0.05)
    with loopback(script) as url:
        config = models(tmp_path, url, concurrency=4)
        code, output = run(config, tmp_path / "inline", "--repeats", "3")
        assert code == 0, output
        code, output = run(
            config, tmp_path / "ray", "--repeats", "3", "--executor", "ray", "--workers", "3"
        )
        assert code == 0, output
        stats = server_stats(url)
    inline, distributed = verdicts(tmp_path / "inline"), verdicts(tmp_path / "ray")
    assert len(inline) == 60 and distributed == inline
    # three worker actors, each allowed 4 by its own lane: the limiter actor holds 4 in all
    assert stats["max_in_flight"] <= 4


@pytest.mark.timing
def test_a_killed_ray_worker_loses_nothing_finished_and_the_rerun_completes(
    tmp_path, monkeypatch
) -> None:
    held = HeldCalls(answer=10)  # ten answered, then every call waits for the kill
    held.install(monkeypatch)
    with loopback(Script(rules=ROUTING_RULES, latency_s=0.05)) as url:
        # A generous timeout: no call of a starved worker times out (the run after the kill
        # then waits up to 35 s for the dead worker's slots).
        config = models(tmp_path, url, concurrency=2, timeout=30)
        out = tmp_path / "run"

        def kill_a_worker_mid_call() -> None:
            ports = held.wait_held(2)  # both slots taken: the run is between calls it cannot end
            wait_until(  # the ten answers journaled: what the kill must not lose
                lambda: journal_lines(out) == 10 or held.run_over, "ten records journaled"
            )
            victim, _ = Counter(map(client_pid, ports)).most_common(1)[0]
            kill_and_wait(victim)

        with beside_the_run(kill_a_worker_mid_call, held) as killing:
            code, output = run(config, out, "--repeats", "4", "--executor", "ray", "--workers", "2")
        killing.result()
        first = list(read_journal(out / "journal.jsonl"))
        ok = server_stats(url)["ok"]
        assert len({r.key for r in first}) == len(first) <= ok  # nothing twice, nothing invented
        assert len(first) >= 10  # what was journaled before the kill is kept
        if code != 0:
            assert "not run" in output  # the killed worker's share is left for the rerun
        code, output = run(config, out, "--repeats", "4", "--executor", "ray", "--workers", "2")
        assert code == 0, output
    again = verdicts(out)
    assert len(again) == 80 and all(again.values())
    assert {r.key for r in first} <= set(again)


@pytest.mark.timing
def test_a_killed_workers_calls_count_against_the_limit_until_they_would_have_timed_out(
    tmp_path, monkeypatch
) -> None:
    held = HeldCalls()
    held.install(monkeypatch)
    with loopback(Script(rules=ROUTING_RULES, latency_s=0.2)) as url:
        config = models(tmp_path, url, concurrency=4, timeout=CALL_TIMEOUT_S)

        def kill_a_worker_mid_calls() -> int:
            ports = held.wait_held(4)  # the model's four slots all taken
            owners = {port: client_pid(port) for port in ports}
            victim, calls = Counter(owners.values()).most_common(1)[0]
            kill_and_wait(victim)
            # The provider goes on with the dead worker's calls as long as their client would
            # have waited; the other worker's calls are answered now.
            held.let_go({p for p, pid in owners.items() if pid == victim}, CALL_TIMEOUT_S)
            held.let_go()
            return calls

        with beside_the_run(kill_a_worker_mid_calls, held) as killing:
            run(config, tmp_path / "run", "--repeats", "6", "--executor", "ray", "--workers", "2")
        assert killing.result() >= 2
    assert held.max_in_flight <= 4


def test_without_ray_the_executor_is_one_line(tmp_path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray":
            raise ImportError("no ray here")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ray)
    config = models(tmp_path, "http://127.0.0.1:9/v1")
    code, output = run(config, tmp_path / "run", "--executor", "ray")
    assert code == 2 and "pip install 'margin[ray]'" in output and "Traceback" not in output
