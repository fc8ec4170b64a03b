"""Attacks that held (issue 23, item 4), kept holding. Each has a test; the ones that had none
are here:

- the budget cap across resumes and 4 workers: here
- 30% injected faults: test_runner.py::test_thirty_percent_faults_lose_nothing_and_count_nothing_twice
- five parent SIGKILLs with 4 workers, no orphan, resume exact: here
- two runs on one directory: test_recoverable.py::test_a_second_run_on_the_same_directory_is_refused;
  through a symlink to it: here
- hostile answers in the report: report/test_report.py::test_hostile_text_is_escaped_and_clipped
  and ::test_the_page_in_real_headless_chromium
- secrets in error bodies: test_runner.py::test_a_wrong_key_is_recorded_at_once_and_never_written
- a network audit: here (worker processes); test_ray.py::test_the_local_instance_listens_on_loopback_only
- a killed Ray worker: test_ray.py::test_a_killed_ray_worker_loses_nothing_finished_and_the_rerun_completes

A machine of any speed reaches the same point in these tests: every wait is for an event (a call
held at the server, a journal line, a process state), never for an amount of time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from margin.journal.records import read_journal
from margin.providers.scripts import Script
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, loopback, release, server_stats
from tests.execute.held_calls import HeldCalls, alive, client_pid, descendants, wait_until

ROUTING = str(SUITES / "routing.yaml")

CAPPED_SUITE = """\
suite: capped
target: 0.9
tasks:
  - id: t
    prompt: "Say something about {{ thing }}."
    cases:
"""
CAPPED_SUITE += "".join(f'      - {{id: c{i}, vars: {{thing: "item {i}"}}}}\n' for i in range(40))
CAPPED_SUITE += "    validators:\n      - max_words: 5\n"
PRICE = {"input_per_mtok": 10.0, "output_per_mtok": 100.0}
"""$0.0001 per completion token: each 100-token answer costs about a cent."""


def margin_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "margin.cli.main", *args]


def env_with(cache: Path) -> dict[str, str]:
    return {**os.environ, "MARGIN_CACHE_DIR": str(cache), "LOOP_KEY": "sk-loop-test"}


def journal_lines(folder: Path) -> int:
    path = folder / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def spend(folder: Path) -> float:
    return sum(r.cost_usd or 0.0 for r in read_journal(folder / "journal.jsonl"))


@pytest.mark.timing
def test_the_cap_holds_across_resumes_with_four_workers(tmp_path, models_config, cache_dir) -> None:
    suite = tmp_path / "capped.yaml"
    suite.write_text(CAPPED_SUITE)
    out = tmp_path / "run"

    def run(cap: str) -> None:
        result = run_cli("run", str(suite), "--models", str(models), "--out", str(out),
                         "--repeats", "1", "--workers", "4", "--max-cost", cap, "--no-cache")  # fmt: skip
        assert result.exit_code == 0, result.output

    with loopback(Script(default="word " * 80)) as url:  # 100 tokens each
        models = models_config(
            url, price=PRICE, timeout=60, sampling={"temperature": 0, "max_tokens": 100}
        )
        run("0.03")
        first, calls = spend(out), server_stats(url)["requests"]
        assert 0 < first <= 0.03
        run("0.03")  # the same command again: the run directory has spent its cap already
        assert server_stats(url)["requests"] == calls and spend(out) == first
        run("0.06")  # a higher cap counts what the earlier invocations spent
        assert spend(out) <= 0.06
        run("1")
        records = list(read_journal(out / "journal.jsonl"))
        assert server_stats(url)["requests"] == len(records)  # each paid call recorded once
    assert len({r.key for r in records}) == len(records) == 40


@pytest.mark.timing
def test_five_parent_sigkills_with_four_workers_leave_no_orphan_and_resume_exactly(
    tmp_path, models_config, monkeypatch
) -> None:
    held = HeldCalls(answer=None)
    held.install(monkeypatch)
    out = tmp_path / "killed"
    args = ("run", ROUTING, "--repeats", "10", "--workers", "4", "--out", str(out), "--no-cache")
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url, concurrency=8, timeout=60)  # 2 slots in each of 4 workers
        command = margin_cmd(*args, "--models", str(models))

        def kill_mid_call(kill: int) -> None:
            held.arm(10)  # ten answers, then every call waits: the kill comes mid-call
            proc = subprocess.Popen(command, env=env_with(tmp_path / "cache"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            wait_until(lambda: len(held.held) == 8 or proc.poll() is not None, "8 calls held")
            assert proc.poll() is None, "the run ended before the kill"
            wait_until(lambda: journal_lines(out) == 10 * kill, "the answered calls journaled")
            callers = {client_pid(port) for port in held.wait_held(8)}
            workers = descendants(proc.pid)  # the scorer, the starter and the workers it forked
            assert len(callers) == 4 and callers <= workers  # four workers, each mid-call
            proc.kill()
            proc.wait()
            # A worker outliving its parent would hold the run directory's lock (inherited).
            wait_until(lambda: not any(map(alive, workers)), "the workers ended with the parent")

        for kill in range(1, 6):
            kill_mid_call(kill)
        held.arm(None)  # the dead workers' calls are never answered; every later one is
        resumed = subprocess.run(command, env=env_with(tmp_path / "cache"), capture_output=True,
                                 text=True, timeout=600, check=False)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert "50 already in the journal" in resumed.stderr
        answered = server_stats(url)["ok"]
        held.let_go()  # the calls of dead workers too: the server can stop
        whole = run_cli(
            *args[:-3], "--out", str(tmp_path / "whole"), "--models", str(models), "--no-cache"
        )
        assert whole.exit_code == 0, whole.output
    after = list(read_journal(out / "journal.jsonl"))
    assert len(after) == len({r.key for r in after}) == answered == 200  # none lost, none twice
    reference = {
        r.key: (r.output, r.passed) for r in read_journal(tmp_path / "whole" / "journal.jsonl")
    }
    assert {r.key: (r.output, r.passed) for r in after} == reference


@pytest.mark.timing
def test_a_second_run_through_a_symlink_to_the_directory_is_refused(
    tmp_path, models_config
) -> None:
    out, link = tmp_path / "run", tmp_path / "link"
    out.mkdir()
    link.symlink_to(out, target_is_directory=True)
    with loopback(Script(rules=ROUTING_RULES, hold_after=0)) as url:  # every call held
        models = models_config(url, concurrency=2)
        args = ("run", ROUTING, "--models", str(models), "--repeats", "1", "--no-cache")
        first = subprocess.Popen(margin_cmd(*args, "--out", str(out)), env=env_with(tmp_path / "c"),
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        wait_until(
            lambda: server_stats(url).get("held", 0) > 0 or first.poll() is not None,
            "the first run's calls held",
        )
        assert first.poll() is None, "the first run ended early"
        second = run_cli(*args, "--out", str(link))
        release(url)
        assert first.wait(timeout=600) == 0
    assert second.exit_code == 2
    assert "another margin run (pid" in second.stderr and "Traceback" not in second.output
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    keys = Counter(r.key for r in read_journal(out / "journal.jsonl"))
    assert len(keys) == 20 and max(keys.values()) == 1


AUDITED = """\
import os, runpy, socket, sys

folder = sys.argv.pop(1)


def audit(event, args):
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[-1]
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        line = f"{event} {address[0]} {address[1]}"
    elif event.startswith(("socket.getaddrinfo", "socket.gethostby")):
        line = f"{event} {args[0]!r}"
    else:
        return
    with open(os.path.join(folder, str(os.getpid())), "a") as audit_file:
        audit_file.write(line + "\\n")


sys.addaudithook(audit)  # forked workers inherit it
sys.argv[0] = "margin"
runpy.run_module("margin.cli.main", run_name="__main__", alter_sys=True)
"""


@pytest.mark.timing
def test_a_run_with_worker_processes_connects_only_to_the_loopback_server(
    tmp_path, models_config
) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url, concurrency=4, timeout=60)
        command = [sys.executable, "-c", AUDITED, str(audit), "run", ROUTING, "--models",
                   str(models), "--repeats", "3", "--workers", "2", "--out", str(tmp_path / "run")]  # fmt: skip
        done = subprocess.run(command, env=env_with(tmp_path / "cache"), capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "run" / "index.html").exists()  # the report was rendered too
    port = url.removeprefix("http://127.0.0.1:").split("/")[0]
    seen = {pid.name: set(pid.read_text().splitlines()) for pid in audit.iterdir()}
    lines = set().union(*seen.values())
    assert {line for line in lines if line.startswith("socket.connect")} == {
        f"socket.connect 127.0.0.1 {port}"
    }
    assert all(
        line.startswith("socket.connect") or line.endswith(("'127.0.0.1'", "'localhost'"))
        for line in lines
    ), lines
    assert sum(any(line.startswith("socket.connect") for line in s) for s in seen.values()) == 2
