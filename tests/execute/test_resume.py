"""Kill a run with SIGKILL mid-way, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from margin.journal.records import AttemptRecord, Journal, read_journal, repair_tail
from margin.providers.scripts import Rule, Script
from tests.conftest import SUITES
from tests.execute.conftest import loopback, release, server_stats

ARITHMETIC = str(SUITES / "arithmetic.yaml")


def margin_run(models: Path, out: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MARGIN_CACHE_DIR": str(cache), "LOOP_KEY": "sk-loop-test"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "margin.cli.main",
            "run",
            ARITHMETIC,
            "--models",
            str(models),
            "--repeats",
            "4",
            "--out",
            str(out),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.timing
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, models_config) -> None:
    # The server answers 30 calls and holds the rest: the kill comes at exactly 30 finished
    # attempts and 2 in flight, however fast or slow the machine.
    rules = [Rule(r"123.+456", "579"), Rule(r"999.+111", "1110")]
    with loopback(Script(rules=rules, default="1000", hold_after=30)) as url:
        models = models_config(url, concurrency=2)
        killed = tmp_path / "killed"
        proc = margin_run(models, killed, tmp_path / "cache-killed")
        deadline = time.monotonic() + 120  # a hang guard only
        while not (lines(killed / "journal.jsonl") == 30 and server_stats(url).get("held") == 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never reached 30 answers"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        assert lines(killed / "journal.jsonl") == 30
        release(url)
        resumed = margin_run(models, killed, tmp_path / "cache-killed")
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err.decode()
        assert "30 already in the journal" in err.decode()
        whole = margin_run(models, tmp_path / "whole", tmp_path / "cache-whole")
        _, err = whole.communicate(timeout=120)
        assert whole.returncode == 0, err.decode()
    after = list(read_journal(killed / "journal.jsonl"))
    reference = list(read_journal(tmp_path / "whole" / "journal.jsonl"))
    assert len(after) == len({r.key for r in after}) == 120
    assert sorted(r.key for r in after) == sorted(r.key for r in reference)
    outputs = {r.key: (r.output, r.passed) for r in reference}
    assert all(outputs[r.key] == (r.output, r.passed) for r in after)


def _record(key: str) -> AttemptRecord:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return AttemptRecord(
        key=key,
        model="m",
        litellm_model="fake/echo",
        suite="s",
        task="t",
        case="c",
        variant="p0",
        paraphrase=0,
        noise_kind="clean",
        noise_level=0.0,
        variant_version=1,
        repeat=0,
        seed=1,
        temperature=0.0,
        messages=[],
        output="x",
        verdicts=[],
        passed=True,
        partial=1.0,
        latency_s=0.1,
        started_at=now,
        finished_at=now,
    )


def test_a_partial_last_line_is_cut_before_appending(tmp_path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(_record("a"))
        journal.append(_record("b"))
    with path.open("ab") as handle:
        handle.write(b'{"schema_version": 1, "key": "c", "mod')  # killed mid-write
    assert [r.key for r in read_journal(path)] == ["a", "b"]
    with Journal(path) as journal:
        journal.append(_record("c"))
    assert [r.key for r in read_journal(path)] == ["a", "b", "c"]
    path.write_bytes(b'{"partial')
    repair_tail(path)
    assert path.read_bytes() == b""
