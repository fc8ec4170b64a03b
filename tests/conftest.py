"""Shared fixtures. Tests never reach the network except loopback servers they start."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from margin.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SUITES = ROOT / "suites"
"""The example suites the README's main command runs (shaped for a short first run)."""
SUITES = ROOT / "tests" / "fixtures" / "suites"
"""The earlier example suites, frozen for tests whose expectations count their cases."""
CONFIGS = ROOT / "configs"

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Hypothesis by default fails an example that takes over 200 ms, and a run whose data is slow
# to generate: both are verdicts on the machine's speed, not on the code.
settings.register_profile("margin", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("margin")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="also run tests that call paid APIs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="calls a paid provider; run with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if (
        inet
        and isinstance(host, str)
        and not (host.startswith("127.") or host in ("::1", "localhost"))
    ):
        raise RuntimeError(f"test tried to reach {host}: only loopback is allowed")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield


def run_cli(*args: str) -> Result:
    """Run `margin ARGS` in-process, stderr kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """write(name, text_or_bytes) -> Path inside tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


def one_error_line(result, prefix: str) -> str:  # type: ignore[no-untyped-def]
    """The command failed as a user error: exit 2 and one line on stderr starting `prefix`."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {prefix}"), lines[0]
    return lines[0]
