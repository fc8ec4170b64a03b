"""A real headless Chromium driven over the DevTools protocol (aiohttp's websocket client).

Debian's `chromium` is installed by `.ci/run`. The page is opened from disk; every request the
page makes is recorded, and so is every console message, exception and dialog.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,2000",
]  # fmt: skip


@dataclass
class PageVisit:
    """What happened while a page was open."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class Browser:
    """`async with Browser() as b: visit = await b.open(path, {"name": "js expression"})`."""

    def __init__(self) -> None:
        assert CHROMIUM, "chromium is not installed (.ci/run installs Debian's chromium)"
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        log = Path(self._profile.name) / "stderr.log"
        with log.open("w") as stderr:  # a file, not a pipe: chromium never blocks on its log
            self._process = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile.name}/profile", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its helper processes share a group we can end
            )
        for _ in range(300):
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", log.read_text())
            if found:
                self.port = int(found.group(1))
                break
            assert self._process.poll() is None, f"chromium exited: {log.read_text()[-2000:]}"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("chromium did not open its DevTools port in 30 s")
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
        self._profile.cleanup()

    async def open(
        self,
        path: Path,
        expressions: dict[str, str],
        screenshot: Path | None = None,
        actions: list[str] = (),  # type: ignore[assignment]
    ) -> PageVisit:
        async with self._session.get(f"http://127.0.0.1:{self.port}/json/list") as answer:
            targets = await answer.json()
        page = next(t for t in targets if t["type"] == "page")
        visit = PageVisit()
        loaded = asyncio.Event()
        async with self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
            answers: set[asyncio.Future[dict[str, Any]]] = set()

            async def reader() -> None:
                async for message in ws:
                    data = json.loads(message.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data)
                        continue
                    method, params = data.get("method"), data.get("params", {})
                    if method == "Network.requestWillBeSent":
                        visit.requests.append(params["request"]["url"])
                    elif method == "Runtime.consoleAPICalled" and params["type"] in (
                        "error",
                        "assert",
                    ):
                        visit.console_errors.append(json.dumps(params["args"])[:300])
                    elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                        visit.console_errors.append(params["entry"]["text"][:300])
                    elif method == "Runtime.exceptionThrown":
                        visit.exceptions.append(json.dumps(params["exceptionDetails"])[:300])
                    elif method == "Page.javascriptDialogOpening":
                        visit.dialogs.append(params["message"])
                        answers.add(
                            asyncio.ensure_future(send("Page.handleJavaScriptDialog", accept=True))
                        )
                    elif method == "Page.loadEventFired":
                        loaded.set()

            async def send(method: str, **params: Any) -> dict[str, Any]:
                number = next(self._ids)
                future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                pending[number] = future
                await ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
                result = await asyncio.wait_for(future, 30)
                assert "error" not in result, result
                return result.get("result", {})

            task = asyncio.create_task(reader())
            for domain in ("Page", "Runtime", "Log", "Network"):
                await send(f"{domain}.enable")
            await send("Page.navigate", url=path.resolve().as_uri())
            await asyncio.wait_for(loaded.wait(), 30)
            for action in actions:
                await send("Runtime.evaluate", expression=action, awaitPromise=True)
            for name, expression in expressions.items():
                result = await send("Runtime.evaluate", expression=expression, returnByValue=True)
                visit.values[name] = result["result"].get("value")
            if screenshot is not None:
                shot = await send(
                    "Page.captureScreenshot", format="png", captureBeyondViewport=False
                )
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            task.cancel()
        return visit


def visit(
    path: Path,
    expressions: dict[str, str],
    screenshot: Path | None = None,
    actions: list[str] = (),  # type: ignore[assignment]
) -> PageVisit:
    """`Browser.open` in a fresh browser, started and closed around it."""

    async def run() -> PageVisit:
        async with Browser() as browser:
            return await browser.open(path, expressions, screenshot, actions)

    return asyncio.run(run())
