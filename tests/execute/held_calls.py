"""A door in front of the loopback fake server that holds calls until the test lets them go, and
the processes behind them: tests that kill a process mid-call synchronise on these, not on time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from margin.providers import fake_server
from margin.providers.fake_server import build_app
from margin.providers.scripts import Script

HANG_GUARD_S = 120.0
"""Only against a hang: every wait here ends on an event long before this."""
T = TypeVar("T")


class HeldCalls:
    """Calls to the loopback server held at its door until the test lets them go, and the most
    that were in flight at once, held ones included (a provider works on a call it has received
    whether or not its client is still there).

    The door answers `answer` calls, then holds every later one (None: holds none).
    """

    def __init__(self, answer: int | None = 0) -> None:
        self.changed = threading.Condition()
        self.to_answer = answer
        self.in_flight = 0
        self.max_in_flight = 0
        self.run_over = False
        self.held: list[tuple[int, asyncio.Event]] = []
        self.abandoned: list[tuple[int, asyncio.Event]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Put the door in front of every fake server the test starts."""

        def app(script: Script) -> web.Application:
            application = build_app(script)
            application.middlewares.append(self._door)
            return application

        monkeypatch.setattr(fake_server, "build_app", app)

    @web.middleware
    async def _door(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        entry = (int(peer[1]) if peer else 0, asyncio.Event())
        with self.changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            hold = self.to_answer is not None and self.to_answer <= 0
            if self.to_answer is not None:
                self.to_answer -= 1
            if hold:
                self.loop = asyncio.get_running_loop()
                self.held.append(entry)
            self.changed.notify_all()
        try:
            if hold:
                await request.read()  # received in full: the provider has it, client or not
                await entry[1].wait()
            return await handler(request)
        finally:
            with self.changed:
                self.in_flight -= 1

    def wait_held(self, count: int) -> list[int]:
        """The client ports of the held calls, once `count` are held."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.held) >= count or self.run_over, HANG_GUARD_S)
            if len(self.held) < count:
                raise AssertionError(f"{len(self.held)} calls held, not {count}")
            return [port for port, _ in self.held]

    def end_of_run(self) -> None:
        with self.changed:
            self.run_over = True
            self.changed.notify_all()

    def arm(self, answer: int | None) -> None:
        """Answer `answer` more calls, then hold again (None: hold none); the calls held now stay
        held for good (their client is dead) and no longer count as held."""
        with self.changed:
            self.abandoned += self.held
            self.held = []
            self.to_answer = answer

    def let_go(self, ports: set[int] | None = None, after_s: float = 0.0) -> None:
        """Hold no new call; answer the held calls from `ports` `after_s` from now (if None: all,
        the abandoned ones too)."""
        with self.changed:
            self.to_answer = None
            going = [e for e in self.held if ports is None or e[0] in ports]
            self.held = [e for e in self.held if e not in going]
            if ports is None:
                going, self.abandoned = going + self.abandoned, []
        if self.loop is not None:
            for _, event in going:
                self.loop.call_soon_threadsafe(self.loop.call_later, after_s, event.set)


@contextmanager
def beside_the_run(step: Callable[[], T], held: HeldCalls) -> Iterator[Future[T]]:
    """Run `step` in a thread beside the run (in the main thread); whatever happens, the held
    calls go when it ends."""

    def guarded() -> T:
        try:
            return step()
        finally:
            held.let_go()

    with ThreadPoolExecutor(1) as pool:
        try:
            yield pool.submit(guarded)
        finally:
            held.end_of_run()


def client_pid(port: int) -> int:
    """The process at the client end of a loopback connection from `port`: the socket's inode
    in /proc/net/tcp, then whose file descriptor it is (only a process of this test's run talks
    to this test's server). An earlier connection from the same port that is closing (TIME_WAIT:
    the five-kill test makes hundreds) is listed too, owned by no process: it is skipped."""
    inode = next(
        (
            line.split()[9]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            # a closed connection that used the same port before (TIME_WAIT) has inode 0
            if line.split()[1] == f"0100007F:{port:04X}" and line.split()[9] != "0"
        ),
        None,
    )
    for entry in Path("/proc").iterdir():
        if inode is not None and entry.name.isdigit():
            with suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return int(entry.name)
    raise AssertionError(f"no process holds the connection from port {port}")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended: only its exit status is left)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    """`pid`'s children, theirs, and so on (a run's pool workers are its starter's children)."""
    found = children_of(pid)
    for child in list(found):
        found |= descendants(child)
    return found


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` (a process state, a file) until it holds; HANG_GUARD_S is a hang guard."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {HANG_GUARD_S} s")
        time.sleep(0.01)


def kill_and_wait(pid: int) -> None:
    """SIGKILL `pid` and wait until it has ended."""
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), f"process {pid} ended by SIGKILL")
