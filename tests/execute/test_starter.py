"""The pool's starter (margin.execute.executors.starter): a process forked as `margin run` begins
imports litellm and forks the workers; without it, or when it dies, nothing is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from margin.config import load_models, load_run_settings
from margin.execute.executors import starter as starters
from margin.execute.executors.pool import could_pool
from margin.execute.executors.starter import Starter
from margin.execute.session import run
from margin.journal.records import read_journal
from margin.plan import build_plan
from margin.providers.scripts import Script
from margin.suite.load import load_suites
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, fast_settings, loopback
from tests.execute.held_calls import HeldCalls, alive, beside_the_run, client_pid, wait_until

ROUTING = str(SUITES / "routing.yaml")


def parent_of(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def pooled(tmp_path: Path, models: Path, out: str = "run") -> list[Path]:
    """`margin run` of routing, two repeats, two workers, into tmp_path/out: its argv."""
    return [
        "run", ROUTING, "--models", str(models), "--repeats", "2", "--workers", "2",
        "--config", str(fast_settings(tmp_path)), "--out", str(tmp_path / out), "--no-cache",
    ]  # fmt: skip


def test_a_pooled_run_s_workers_are_forked_by_its_starter(
    tmp_path, models_config, monkeypatch
) -> None:
    held = HeldCalls(answer=0)  # every call held until the callers are known
    held.install(monkeypatch)
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url, concurrency=4, timeout=60)  # two calls in each worker

        def callers_parents() -> set[int]:
            callers = {client_pid(port) for port in held.wait_held(4)}
            starter = starters.current()
            assert starter is not None and starter.child is not None
            assert len(callers) == 2  # two workers, each mid-call
            return {parent_of(pid) for pid in callers} - {starter.child.pid}

        with beside_the_run(callers_parents, held) as parents:
            result = run_cli(*pooled(tmp_path, models))
        assert parents.result() == set()  # no worker but the starter's
    assert result.exit_code == 0, result.output
    assert starters.current() is None  # stopped with the command
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == len({r.key for r in records}) == 40  # 10 cases × 2 prompts × 2 repeats
    assert all(r.passed for r in records)


def inputs(models: Path, tmp_path: Path) -> tuple[list, list, object]:
    suites = load_suites([ROUTING])
    specs = load_models(models)
    settings = load_run_settings([models, fast_settings(tmp_path)], repeats=2, workers=2)
    return suites, specs, settings


def test_a_run_whose_starter_is_gone_forks_its_own_workers(tmp_path, models_config) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url, Starter() as starter:
        models = models_config(url)
        suites, specs, settings = inputs(models, tmp_path)
        assert starter.child is not None
        starter.child.kill()  # gone before the run asks (killed, out of memory)
        starter.child.join()
        result = run(suites, specs, settings, out=tmp_path / "run", cache_dir=tmp_path / "c")
        assert starters.current() is None  # the pool stopped it and forked its own
    assert (
        result.stats.failed_workers == 0 and result.stats.done == 40
    )  # 10 cases × 2 prompts × 2 repeats
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len({r.key for r in records}) == 40  # 10 cases × 2 prompts × 2 repeats


@pytest.mark.timing
def test_a_starter_killed_mid_run_takes_its_workers_and_loses_nothing_finished(
    tmp_path, models_config, monkeypatch
) -> None:
    held = HeldCalls(answer=6)  # six answers, then every call waits: the kill comes mid-call
    held.install(monkeypatch)
    journal = tmp_path / "run" / "journal.jsonl"
    with loopback(Script(rules=ROUTING_RULES)) as url, Starter() as starter:
        models = models_config(url, concurrency=4, timeout=60)
        suites, specs, settings = inputs(models, tmp_path)
        assert starter.child is not None
        pid = starter.child.pid

        def kill_the_starter() -> set[int]:
            callers = {client_pid(port) for port in held.wait_held(4)}
            wait_until(lambda: journal.exists() and len(journal.read_bytes().splitlines()) == 6,
                       "the answered calls journaled")  # fmt: skip
            os.kill(pid, signal.SIGKILL)
            return callers

        with beside_the_run(kill_the_starter, held) as killed:
            first = run(suites, specs, settings, out=tmp_path / "run", cache_dir=tmp_path / "c")
        callers = killed.result()
        assert starters.current() is None
        # Its workers died with it (PR_SET_PDEATHSIG), each counted as failed; every answer
        # that reached the run (the six, and any let go as the kill landed) was kept, once.
        wait_until(lambda: not any(map(alive, callers)), "the workers ended with the starter")
        kept = len(list(read_journal(journal)))
        assert first.stats.failed_workers == 2 and 6 <= first.stats.done == kept < 40
        held.arm(None)
        again = run(suites, specs, settings, out=tmp_path / "run", cache_dir=tmp_path / "c")
    assert again.stats.resumed == kept and again.stats.failed_workers == 0
    records = list(read_journal(journal))
    assert len(records) == len({r.key for r in records}) == 40  # 10 cases × 2 prompts × 2 repeats


def test_only_a_run_that_can_use_the_pool_keeps_its_starter(tmp_path, models_config) -> None:
    suites = load_suites([ROUTING])
    remote = load_models(models_config("http://127.0.0.1:9/v1"))
    local = load_models(models_config("http://127.0.0.1:9/v1", name="l", model="local/m"))
    two = load_run_settings([], repeats=2, workers=2)
    for specs, settings, expected in [
        (remote, two, True),
        (remote, two.model_copy(update={"workers": 1}), False),
        (remote, two.model_copy(update={"executor": "ray"}), False),
        (local, two, False),  # an in-process model runs in one process
    ]:
        plan = build_plan(suites, specs, settings, specs)
        assert could_pool(plan.attempts, settings) is expected
