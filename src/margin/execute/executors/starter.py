"""The pool's starter: a process forked as `margin run` begins, which imports litellm while the
run loads its suites and plans, then forks the pool's workers when the run hands it their shares.

Importing litellm (with the lazy imports of its first call) takes ~1.7 s of CPU; the run's own
start — margin's imports, a 2,000-case suite, the plan, the scorer's fork — ~0.6 s. One after the
other, as when the run's process forks the workers itself, they delay the first call by their
sum; side by side, on two cores, by the longer one. The starter is forked before the run
directory is locked or its journal opened, so it holds neither; each worker's record pipe is
made by the run, its write end passed to the starter over a Unix socket (SCM_RIGHTS), so records
go straight to the run, the journal's only writer, exactly as from workers it forked itself.
The starter serves one batch after another (adaptive rounds, policies); it dies with the run
(PR_SET_PDEATHSIG), and its workers with it.

When there is none (no fork; a run that cannot use the pool: an in-process model, one worker,
Ray), or it failed, or it is not ready READY_S after the run asks, the pool forks its workers
from the run's process, as it always could.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.context import ForkProcess
from multiprocessing.reduction import recv_handle, send_handle
from types import TracebackType

from margin.config import ModelSpec
from margin.execute.budget import Budget
from margin.execute.executors.base import Job
from margin.execute.executors.forked import die_with_parent, end_process, fork_with_pipe, readable
from margin.execute.executors.worker import work
from margin.providers.gateway import litellm_module, warm

READY_S = 120.0
"""How long the run waits for the starter to have litellm imported; past it, it is stopped and
the run's process forks the workers itself."""
STOP_S = 5.0
"""How long a starter asked to stop gets before it is killed (its workers die with it)."""

_current: Starter | None = None


def current() -> Starter | None:
    """The starter of this process's run, if it has one and it has not been stopped."""
    return _current


@dataclass
class Started:
    """The workers a starter forked for one batch: the read end of each one's record pipe."""

    starter: Starter
    pipes: list[Connection]
    budget_stopped: bool = False
    """Whether the budget (held in the starter, shared by its workers) refused a call."""

    def terminate(self) -> None:
        """Stop making calls now: the starter is stopped, and its workers die with it."""
        self.starter.stop()

    def join(self, grace_s: float) -> int:
        """How many of the workers failed, once the starter says they ended (waiting up to
        `grace_s`, then stopping it; a worker not accounted for counts as failed)."""
        exits = self.starter.exits(grace_s)
        if exits is None:
            self.starter.stop()
            return len(self.pipes)
        codes, self.budget_stopped = exits
        return sum(code != 0 for code in codes)


class Starter:
    """`with Starter():` — forks the starter; the pool finds it through `current()`."""

    def __init__(self) -> None:
        self.child: ForkProcess | None = None
        self.conn: Connection | None = None
        self.ready = False
        self.warmed = False

    def __enter__(self) -> Starter:
        global _current
        if not hasattr(os, "fork"):
            return self
        collecting = gc.isenabled()
        gc.disable()  # the starter is born without collections, and never runs one (_serve)
        try:
            forked = fork_with_pipe(_serve, os.getpid(), daemon=False)  # it forks workers
        finally:
            if collecting:
                gc.enable()
        if forked is not None:
            (self.child, self.conn), _current = forked, self
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """End the starter (idle, or its workers with it); the pool then forks its own."""
        global _current
        if _current is self:
            _current = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.child is not None:
            end_process(self.child, STOP_S)
            self.child = None

    def start(self, shares: Sequence[Job], budget: Budget) -> Started | None:
        """Have the starter fork one worker per share, sharing one budget of `budget`'s cap and
        spend; None (the starter stopped) when it is gone or not ready in READY_S."""
        self.warm([a.model for share in shares for a in share.attempts])
        if not self._ready() or self.conn is None or self.child is None:
            self.stop()
            return None
        context = get_context("fork")
        pipes = [context.Pipe(duplex=False) for _ in shares]
        try:
            self.conn.send(("batch", list(shares), budget.cap, budget.spent))
            for _, end in pipes:
                send_handle(self.conn, end.fileno(), self.child.pid)
        except OSError:  # gone before it had every end: it forks nothing without them
            for receive, _ in pipes:
                receive.close()
            self.stop()
            return None
        finally:
            for _, end in pipes:
                end.close()  # the starter's copy (and its workers') are the only ones left
        # From here the workers' pipes end when they do, or when the starter dies before
        # forking them: the run reads each to its end either way, nothing sent is lost.
        return Started(self, [receive for receive, _ in pipes])

    def warm(self, models: Sequence[ModelSpec]) -> None:
        """Name the run's models: the starter warms each one's provider path up (the lazy
        imports of a first call) once litellm is loaded, then says it is ready. Once only."""
        if self.warmed or self.conn is None:
            return
        self.warmed = True
        try:
            self.conn.send(("warm", list({m.name: m for m in models}.values())))
        except OSError:
            self.stop()

    def exits(self, timeout_s: float) -> tuple[list[int], bool] | None:
        """The exit codes of the last batch's workers and whether its budget stopped, as the
        starter reports them within `timeout_s`; None when it does not."""
        if not self._readable(timeout_s) or self.conn is None:
            return None
        with suppress(EOFError, OSError):
            kind, codes, stopped = self.conn.recv()
            if kind == "exits":
                return list(codes), bool(stopped)
        return None

    def _ready(self) -> bool:
        """Whether the starter said it is warm (waiting up to READY_S for it)."""
        if not self.ready and self._readable(READY_S) and self.conn is not None:
            with suppress(EOFError, OSError):
                self.ready = self.conn.recv() == "ready"
        return self.ready

    def _readable(self, timeout_s: float) -> bool:
        return (
            self.conn is not None
            and self.child is not None
            and readable(self.conn, self.child, timeout_s)
        )


def _serve(conn: Connection, runs: Connection, parent: int) -> None:
    """The starter: import litellm, warm the run's models up when it names them, say "ready";
    then fork each batch's workers and report how they ended, until the run closes its end
    or stops it."""
    runs.close()
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # No collection in here: while litellm loads, each full one would walk every module object
    # loaded so far, for nothing (a sixth of the import's time); and a process forked from one
    # with threads (a test's, an embedding program's) may hold half-changed objects that only a
    # collection would trip over. The workers collect, over what they inherit frozen.
    try:
        litellm_module()
    except Exception:  # the run forks its own workers (and meets the same error there)
        return
    while True:
        try:
            kind, *body = conn.recv()
            if kind == "warm":
                warm(body[0])
                conn.send("ready")
                continue
            shares, cap, spent = body
            ends = [recv_handle(conn) for _ in shares]
        except (EOFError, OSError):
            return
        codes, stopped = _batch(shares, ends, Budget(cap, spent))
        try:
            conn.send(("exits", codes, stopped))
        except OSError:
            return


def _batch(shares: list[Job], ends: list[int], budget: Budget) -> tuple[list[int], bool]:
    """Fork one worker per share, each with its pipe's write end `ends[i]`; wait for them all:
    their exit codes, and whether the budget they shared stopped. Its models were warmed up
    when the run named them (`Starter.warm`, before its first batch)."""
    gc.freeze()  # what the workers inherit is not walked again by their collectors
    context = get_context("fork")
    children = []
    for i, (share, end) in enumerate(zip(shares, ends, strict=True)):
        others = ends[i + 1 :]  # the later workers' ends: closed in this worker at once
        child = context.Process(
            target=_work, args=(share, budget, end, others, os.getpid()), daemon=True
        )
        child.start()
        os.close(end)
        children.append(child)
    for child in children:
        child.join()
    return [child.exitcode or 0 for child in children], budget.stopped


def _work(share: Job, budget: Budget, end: int, others: list[int], parent: int) -> None:
    for fd in others:
        os.close(fd)
    gc.enable()  # off in the starter; what it holds is frozen, never walked here
    work(share, budget, Connection(end, readable=False), parent)
