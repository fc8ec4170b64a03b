"""Fixtures for runner tests: a loopback OpenAI-compatible server and configs pointing at it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import Result

from margin.providers.fake_server import serve_in_thread
from margin.providers.scripts import Rule, Script
from tests.conftest import run_cli

ROUTING_RULES = [
    Rule("charged twice|invoice|VAT", "billing"),
    Rule("parcel|courier|delivered", "shipping"),
    Rule("crashes|API returns", "technical"),
    Rule("password|close my account", "account"),
    Rule("send it back|return label", "returns"),
]


@contextmanager
def loopback(script: Script) -> Iterator[str]:
    with serve_in_thread(script) as url:
        yield url


def server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as answer:
        return json.loads(answer.read())


def release(url: str) -> None:
    """Let a loopback server whose script has `hold_after` answer the calls it holds."""
    request = urllib.request.Request(url.removesuffix("/v1") + "/release", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def models_config(tmp_path: Path) -> Callable[..., Path]:
    """models_config(url, **fields) -> a config with one OpenAI-compatible model at `url`."""

    def make(url: str, name: str = "loop", **fields: object) -> Path:
        spec = {
            "name": name,
            "model": "openai/fake-small",
            "api_base": url,
            "api_key": "${LOOP_KEY}",
            "concurrency": 8,
            "timeout": 2,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        }
        spec.update(fields)
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps({"models": [spec], "run": {"noise": False}}))
        return path

    return make


@pytest.fixture(autouse=True)
def _loop_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_KEY", "sk-loop-test")


def fast_settings(tmp_path: Path, **fields: object) -> Path:
    run = {"backoff_s": 0.01, "backoff_max_s": 0.05, "retries": 6}
    run.update(fields)
    path = tmp_path / "run.json.yaml"
    path.write_text(json.dumps({"run": run}))
    return path


def run_once(tmp_path: Path, suite: Path | str, models: Path) -> Result:
    """`margin run SUITE --models MODELS` in-process: one repeat, fast retries (`fast_settings`),
    into tmp_path/run."""
    return run_cli(
        "run", str(suite), "--models", str(models), "--repeats", "1",
        "--config", str(fast_settings(tmp_path)), "--out", str(tmp_path / "run"),
    )  # fmt: skip
