"""Kill a run with SIGKILL mid-way, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from margin.journal import AttemptRecord, Journal, read_journal, repair_tail
from margin.providers.scripts import Rule, Script
from tests.conftest import SUITES
from tests.runner.conftest import loopback

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


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, models_config) -> None:
    script = Script(
        rules=[Rule(r"123.+456", "579"), Rule(r"999.+111", "1110")], default="1000", latency_s=0.04
    )
    with loopback(script) as url:
        models = models_config(url, concurrency=2)
        killed = tmp_path / "killed"
        proc = margin_run(models, killed, tmp_path / "cache-killed")
        deadline = time.monotonic() + 60
        while lines(killed / "journal.jsonl") < 30 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        at_kill = lines(killed / "journal.jsonl")
        assert 30 <= at_kill < 120
        resumed = margin_run(models, killed, tmp_path / "cache-killed")
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err.decode()
        assert (
            f"{at_kill} already in the journal" in err.decode()
            or f"{at_kill - 1} already" in err.decode()
        )
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
