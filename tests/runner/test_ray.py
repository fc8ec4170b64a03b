"""`margin run --executor ray` on a local Ray instance started by the test (loopback only)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from margin.journal import read_journal
from margin.providers.scripts import Script
from tests.conftest import SUITES, run_cli
from tests.runner.conftest import ROUTING_RULES, loopback, server_stats

ray = pytest.importorskip("ray")
ROUTING = str(SUITES / "routing.yaml")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    from margin.ray_executor import start

    os.environ["LOOP_KEY"] = "sk-loop-test"  # the workers inherit the environment at start
    start(None)
    yield
    ray.shutdown()


def models(tmp_path: Path, url: str, concurrency: int = 4) -> Path:
    spec = {
        "name": "loop", "model": "openai/fake", "api_base": url, "api_key": "${LOOP_KEY}",
        "timeout": 10, "concurrency": concurrency,
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


def ray_workers() -> list[int]:
    """PIDs of processes running margin's Ray worker actor (`ray::Worker…` in their title)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"ray::Worker" in title:
                found.append(int(entry.name))
    return found


def verdicts(folder: Path) -> dict[str, bool | None]:
    return {r.key: r.passed for r in read_journal(folder / "journal.jsonl")}


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


def test_a_killed_ray_worker_loses_nothing_finished_and_the_rerun_completes(tmp_path) -> None:
    with loopback(Script(rules=ROUTING_RULES, latency_s=0.15)) as url:
        config = models(tmp_path, url, concurrency=2)
        out = tmp_path / "run"
        killed: list[int] = []

        def kill_a_worker() -> None:
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                if server_stats(url).get("ok", 0) >= 10:
                    for pid in ray_workers():
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_worker)
        killer.start()
        code, output = run(config, out, "--repeats", "4", "--executor", "ray", "--workers", "2")
        killer.join()
        assert killed, "no Ray worker was found to kill"
        first = list(read_journal(out / "journal.jsonl"))
        ok = server_stats(url)["ok"]
        assert len({r.key for r in first}) == len(first) <= ok  # nothing twice, nothing invented
        if code != 0:
            assert "not run" in output  # the killed worker's share is left for the rerun
        code, output = run(config, out, "--repeats", "4", "--executor", "ray", "--workers", "2")
        assert code == 0, output
    again = verdicts(out)
    assert len(again) == 80 and all(again.values())
    assert {r.key for r in first} <= set(again)


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
