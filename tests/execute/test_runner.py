"""The runner through litellm's real HTTP path against a loopback server with faults."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from margin.config import load_models, load_run_settings
from margin.journal.records import read_journal
from margin.plan import build_plan
from margin.providers.scripts import Script
from margin.suite.load import load_suites
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, fast_settings, loopback, server_stats

ROUTING = str(SUITES / "routing.yaml")


def planned_keys(models: Path, repeats: int, suites: tuple[str, ...] = (ROUTING,)) -> list[str]:
    plan = build_plan(
        load_suites(suites), load_models(models), load_run_settings([models], repeats=repeats)
    )
    return [str(a.key) for a in plan.attempts]


def test_a_clean_run_records_every_attempt_once(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "2",
            "--out",
            str(tmp_path / "run"),
        )
        assert result.exit_code == 0, result.output
        stats = server_stats(url)
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert sorted(r.key for r in records) == sorted(planned_keys(models, 2))
    assert all(r.passed for r in records)  # the script answers every routing case right
    assert stats["ok"] == len(records) == 40  # 10 cases × 2 wordings × 2 repeats, none cached
    first = next(r for r in records if r.paraphrase == 0)
    assert first.messages[0].role == "user"
    assert "Route the customer message" in first.messages[0].content
    assert first.cost_usd and first.cost_usd > 0 and first.input_tokens > 0
    assert "loop: 40/40 100.0% [69.1, 100.0] over all tasks" in result.stdout


@pytest.mark.timing
def test_thirty_percent_faults_lose_nothing_and_count_nothing_twice(
    tmp_path, models_config, cache_dir
) -> None:
    script = Script(rules=ROUTING_RULES, fault_rate=0.3, seed=7, retry_after_s=0.02)
    with loopback(script) as url:
        models = models_config(url, timeout=1.0)
        settings = fast_settings(tmp_path, retries=2)
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--config",
            str(settings),
            "--repeats",
            "5",
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
        )
        assert result.exit_code == 0, result.output
        stats = server_stats(url)
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys)) == 100
    assert sorted(keys) == sorted(planned_keys(models, 5))
    faults = {k: v for k, v in stats.items() if k.startswith("fault:")}
    assert set(faults) == {
        "fault:429",
        "fault:500",
        "fault:503",
        "fault:timeout",
        "fault:malformed",
        "fault:drop",
    }
    infra = [r for r in records if r.error]
    judged = [r for r in records if not r.error]
    # Every success the server sent was recorded once; every fault was retried or recorded.
    assert len(judged) == stats["ok"]
    assert sum(r.retries for r in records) + len(records) == stats["requests"]
    for record in infra:
        assert record.passed is None and record.partial is None and record.output is None
        assert record.retries == 2
        assert record.error in {
            "RateLimited",
            "ServerError",
            "ProviderTimeout",
            "MalformedResponse",
            "ConnectionFailed",
        }
    assert all(r.passed for r in judged)  # infra errors never show up as model failures
    assert any(r.retries for r in judged)


@pytest.mark.timing
def test_each_fault_maps_to_its_class(tmp_path, models_config, cache_dir) -> None:
    expected = {
        "429": "RateLimited",
        "500": "ServerError",
        "503": "ServerError",
        "timeout": "ProviderTimeout",
        "malformed": "MalformedResponse",
        "drop": "ConnectionFailed",
    }
    seen = {}
    for fault in expected:
        with loopback(Script(fault_rate=1.0, faults=(fault,), retry_after_s=0.01)) as url:
            # Only the hanging fault needs a short timeout; on a loaded CI machine a
            # quick fault answer can take longer than 0.3 s and would read as a timeout.
            timeout = 0.3 if fault == "timeout" else 10.0
            models = models_config(url, name=f"m{fault}", timeout=timeout)
            out = tmp_path / f"run-{fault}"
            result = run_cli(
                "run",
                str(SUITES / "arithmetic.yaml"),
                "--models",
                str(models),
                "--repeats",
                "1",
                "--config",
                str(fast_settings(tmp_path, retries=0, paraphrases=False)),
                "--out",
                str(out),
                "--no-cache",
            )
            assert result.exit_code == 0, result.output
        seen[fault] = {r.error for r in read_journal(out / "journal.jsonl")}
    assert seen == {fault: {error} for fault, error in expected.items()}


@pytest.mark.timing
def test_retry_after_is_honoured(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(fault_rate=1.0, faults=("429",), retry_after_s=0.4)) as url:
        models = models_config(url)
        result = run_cli(
            "run",
            str(SUITES / "arithmetic.yaml"),
            "--models",
            str(models),
            "--repeats",
            "1",
            "--config",
            str(fast_settings(tmp_path, retries=2, paraphrases=False)),
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
        )
        assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert {r.error for r in records} == {"RateLimited"}
    for record in records:
        waited = (record.finished_at - record.started_at).total_seconds()
        assert (
            record.retries == 2 and waited >= 0.8
        )  # two waits of Retry-After 0.4 s; backoff alone is ≤ 0.05 s


def test_a_wrong_key_is_recorded_at_once_and_never_written(
    tmp_path, models_config, cache_dir, monkeypatch
) -> None:
    planted = "sk-planted-secret-0123456789abcdef"
    monkeypatch.setenv("LOOP_KEY", planted)
    with loopback(Script(require_key="sk-the-right-one")) as url:
        models = models_config(url)
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "1",
            "--config",
            str(fast_settings(tmp_path)),
            "--out",
            str(tmp_path / "run"),
        )
        assert result.exit_code == 1, result.output  # halted: the key is wrong for every call
        stats = server_stats(url)
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert {r.error for r in records} == {"AuthenticationFailed"}
    assert all(r.retries == 0 for r in records) and stats["requests"] == len(records)
    assert 3 <= len(records) <= 3 + 8  # the first refusals and the calls already in flight
    assert "error: model loop stopped after its first calls were all refused" in result.stderr
    assert "Incorrect API key" in records[0].error_message
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "journal.jsonl" for p in written) and any(
        p.name == "run.json" for p in written
    )
    for path in written:
        data = path.read_bytes()
        assert planted.encode() not in data, path
        assert planted[:8].encode() + b"secret" not in data, path
    assert planted not in result.output


def test_cache_hits_never_call_and_repeats_never_collapse(
    tmp_path, models_config, cache_dir
) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        first = run_cli(
            "run", ROUTING, "--models", str(models), "--repeats", "3", "--out", str(tmp_path / "a")
        )
        assert first.exit_code == 0, first.output
        calls = server_stats(url)["requests"]
        assert calls == 60  # 3 repeats are 3 calls, not one cached answer
        second = run_cli(
            "run", ROUTING, "--models", str(models), "--repeats", "3", "--out", str(tmp_path / "b")
        )
        assert second.exit_code == 0, second.output
        assert server_stats(url)["requests"] == calls
        third = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "3",
            "--out",
            str(tmp_path / "c"),
            "--refresh",
        )
        assert third.exit_code == 0
        assert server_stats(url)["requests"] == 2 * calls
    a = {r.key: r for r in read_journal(tmp_path / "a" / "journal.jsonl")}
    b = {r.key: r for r in read_journal(tmp_path / "b" / "journal.jsonl")}
    assert a.keys() == b.keys()
    assert all(r.cache_hit and r.cost_usd == 0 for r in b.values())
    assert sum(r.cost_saved_usd for r in b.values()) == sum(r.cost_usd for r in a.values())
    assert all(not r.cache_hit for r in read_journal(tmp_path / "c" / "journal.jsonl"))


def test_budget_stops_cleanly_and_resumes(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(
            url, price={"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}, concurrency=2
        )
        out = tmp_path / "run"
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "2",
            "--out",
            str(out),
            "--max-cost",
            "0.5",
        )
        assert result.exit_code == 0, result.output
        assert "budget: stopped scheduling" in result.stderr and "not run" in result.stderr
        partial = list(read_journal(out / "journal.jsonl"))
        assert 0 < len(partial) < 40
        assert sum(r.cost_usd for r in partial) <= 0.5
        again = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "2",
            "--out",
            str(out),
            "--max-cost",
            "100",
        )
        assert again.exit_code == 0, again.output
    final = [r.key for r in read_journal(out / "journal.jsonl")]
    assert sorted(final) == sorted(planned_keys(models, 2)) and len(set(final)) == 40


@pytest.mark.timing
def test_per_model_concurrency_is_respected(tmp_path, models_config, cache_dir) -> None:
    # The server holds the first answers until 4 calls are in flight or 1 s passed: the 3
    # allowed calls are surely in flight together (on a machine of any speed), and a 4th,
    # had the limit let it through, would have arrived while they were held.
    script = Script(rules=ROUTING_RULES, gather=4, gather_wait_s=1.0)
    with loopback(script) as url:
        models = models_config(url, concurrency=3)
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "2",
            "--out",
            str(tmp_path / "r"),
            "--no-cache",
        )
        assert result.exit_code == 0
        assert server_stats(url)["max_in_flight"] == 3


@pytest.mark.timing
def test_rate_limit_queues_instead_of_rejecting(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url, rpm=600)  # one call per 0.1 s
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "r"),
            "--no-cache",
        )
        assert result.exit_code == 0
    records = list(read_journal(tmp_path / "r" / "journal.jsonl"))
    assert len(records) == 20 and not any(r.error for r in records)
    span = (
        max(r.finished_at for r in records) - min(r.started_at for r in records)
    ).total_seconds()
    assert span >= 1.5  # 20 calls at 10 per second were spread out, none refused


def test_a_changed_run_in_the_same_folder_is_refused(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        out = tmp_path / "run"
        assert (
            run_cli(
                "run", ROUTING, "--models", str(models), "--repeats", "1", "--out", str(out)
            ).exit_code
            == 0
        )
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--repeats",
            "1",
            "--out",
            str(out),
            "--seed",
            "9",
        )
    assert result.exit_code == 2
    assert "holds a different run" in result.stderr
    saved = json.loads((out / "run.json").read_text())
    assert saved["models"][0]["api_key"] == "${LOOP_KEY}"
    assert Counter(r.key for r in read_journal(out / "journal.jsonl")).most_common(1)[0][1] == 1


@pytest.mark.timing
def test_worker_processes_lose_nothing_and_count_nothing_twice(
    tmp_path, models_config, cache_dir
) -> None:
    script = Script(rules=ROUTING_RULES, fault_rate=0.3, seed=3, retry_after_s=0.02)
    with loopback(script) as url:
        models = models_config(url, timeout=1.0, concurrency=6)
        settings = fast_settings(tmp_path, retries=2)
        result = run_cli(
            "run",
            ROUTING,
            "--models",
            str(models),
            "--config",
            str(settings),
            "--workers",
            "2",
            "--repeats",
            "5",
            "--out",
            str(tmp_path / "run"),
        )
        assert result.exit_code == 0, result.output
        stats = server_stats(url)
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert sorted(r.key for r in records) == sorted(planned_keys(models, 5))
    assert len({r.key for r in records}) == 100
    assert len([r for r in records if not r.error]) == stats["ok"]
    assert sum(r.retries for r in records) + len(records) == stats["requests"]
    assert stats["max_in_flight"] <= 6  # the model's limit is divided between the workers


def test_workers_stay_single_for_in_process_models_even_when_asked() -> None:
    from margin.config import ModelSpec, RunSettings
    from margin.execute.executors.pool import choose_workers

    suites = load_suites([ROUTING])
    remote = ModelSpec(name="r", model="openai/x", concurrency=32)
    local = ModelSpec(name="l", model="local/smollm2-135m", concurrency=32)
    many = RunSettings(repeats=20, concurrency=64)
    cores = os.cpu_count() or 1
    expected = 1 if cores < 2 else min(cores, 4)
    assert choose_workers(build_plan(suites, [remote], many).attempts, many) == expected
    assert choose_workers(build_plan(suites, [local], many).attempts, many) == 1
    # Asking for 4 workers does not load an in-process model four times.
    asked = many.model_copy(update={"workers": 4})
    assert choose_workers(build_plan(suites, [local], asked).attempts, asked) == 1
    assert choose_workers(build_plan(suites, [local, remote], asked).attempts, asked) == 1
    # A budget no longer forces one process: the cap is one account shared by the workers.
    capped = many.model_copy(update={"max_cost": 1.0})
    assert choose_workers(build_plan(suites, [remote], capped).attempts, capped) == expected
    few = RunSettings(repeats=1, concurrency=64)
    assert choose_workers(build_plan(suites, [remote], few).attempts, few) == 1


def test_a_missing_key_is_one_line_before_any_worker_starts(
    tmp_path, models_config, cache_dir, monkeypatch
) -> None:
    monkeypatch.delenv("LOOP_KEY")
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        result = run_cli(
            "run", ROUTING, "--models", str(models), "--workers", "2", "--out", str(tmp_path / "r")
        )
        assert server_stats(url).get("requests", 0) == 0
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: environment variable LOOP_KEY is not set (model loop)"


def test_a_fully_cached_run_never_imports_litellm(tmp_path, models_config, cache_dir) -> None:
    """Every answer in the cache: the rerun (in a fresh process, workers asked for) replays them
    without a call and without importing litellm (seconds of CPU) — in one process; and a fully
    resumed run imports it neither."""
    import subprocess
    import sys

    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        first = run_cli("run", ROUTING, "--models", str(models), "--repeats", "3",
                        "--out", str(tmp_path / "a"))  # fmt: skip
        assert first.exit_code == 0, first.output
        calls = server_stats(url)["requests"]
        script = (
            "import sys\n"
            "from margin.cli.main import cli\n"
            "try:\n"
            "    cli.main(sys.argv[1:], standalone_mode=False)\n"
            "finally:\n"
            "    print('litellm imported:', 'litellm' in sys.modules)\n"
        )
        args = ["run", ROUTING, "--models", str(models), "--repeats", "3", "--workers", "2",
                "--out", str(tmp_path / "b")]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        resumed = subprocess.run(  # the same run again: every attempt is already journaled
            [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
        )
        assert resumed.returncode == 0, resumed.stderr
        assert server_stats(url)["requests"] == calls
    assert "litellm imported: False" in done.stdout
    assert "litellm imported: False" in resumed.stdout
    b = list(read_journal(tmp_path / "b" / "journal.jsonl"))
    assert len(b) == 60 and all(r.cache_hit for r in b)


def test_the_core_room_admits_one_model_at_a_time_and_its_parallel_calls() -> None:
    """In-process models share the cores: never two models at once; a model with `parallel: 3`
    has up to 3 calls inside, one without it 1."""
    import asyncio

    from margin.config import ModelSpec
    from margin.execute.lanes import CoreRoom

    wide = ModelSpec(name="wide", model="local/a", parallel=3, concurrency=3)
    narrow = ModelSpec(name="narrow", model="local/b")
    room = CoreRoom()
    inside: Counter[str] = Counter()
    seen: list[dict[str, int]] = []

    async def call(model: ModelSpec) -> None:
        async with room.slot(model):
            inside[model.name] += 1
            seen.append(dict(+inside))
            await asyncio.sleep(0.01)
            inside[model.name] -= 1

    async def main() -> None:
        await asyncio.gather(*(call(m) for m in [wide, narrow] * 6))

    asyncio.run(main())
    assert all(len(state) == 1 for state in seen)  # one model in the room at a time
    assert max(s.get("wide", 0) for s in seen) == 3
    assert max(s.get("narrow", 0) for s in seen) == 1


def _one_more_repeat(
    tmp_path: Path, models_config, before_rerun: Callable[[], object], *rerun_args: str
) -> None:
    """Run 2 repeats, then `before_rerun()`, then 3 repeats into another run directory: only the
    third repeat is called, the first two are replayed from the cache."""
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        first = run_cli("run", ROUTING, "--models", str(models), "--repeats", "2",
                        "--out", str(tmp_path / "a"))  # fmt: skip
        assert first.exit_code == 0, first.output
        calls = server_stats(url)["requests"]
        before_rerun()
        more = run_cli("run", ROUTING, "--models", str(models), "--repeats", "3", *rerun_args,
                       "--out", str(tmp_path / "b"))  # fmt: skip
        assert more.exit_code == 0, more.output
        assert server_stats(url)["requests"] == calls + 20  # only the third repeat is called
    b = list(read_journal(tmp_path / "b" / "journal.jsonl"))
    assert len(b) == 60 and sum(r.cache_hit for r in b) == 40
    assert all(r.cache_hit == (r.repeat < 2) for r in b)


def test_a_big_run_probes_which_answers_are_cached_without_holding_them(
    tmp_path, models_config, cache_dir, monkeypatch
) -> None:
    """Above PREFETCH_MAX pending attempts the probe keeps only which keys are cached; each hit
    is read when its attempt runs, and the misses are called, each once."""
    from margin.execute import cache

    _one_more_repeat(
        tmp_path,
        models_config,
        lambda: monkeypatch.setattr(cache, "PREFETCH_MAX", 0),
    )


def test_workers_replay_the_probes_answers_without_looking_again(
    tmp_path, models_config, cache_dir, monkeypatch
) -> None:
    """A partly cached run with worker processes: the parent's probe read the answers once and
    the forked workers inherit them; no worker looks an attempt up in the cache again."""
    from margin.execute.cache import AnswerCache

    looked = tmp_path / "looked-up"

    def get(self: AnswerCache, key: str) -> None:
        with looked.open("a") as handle:  # a file: the lookups happen in forked workers
            handle.write(key + "\n")
        return None

    _one_more_repeat(
        tmp_path,
        models_config,
        lambda: monkeypatch.setattr(AnswerCache, "get", get),
        "--workers",
        "2",
    )
    assert not looked.exists()
