"""`margin run`'s scoring and report, in a process forked before the calls.

The scoring stack (pandas, pyarrow, scipy, Jinja and margin's statistics) takes most of a second
to import and ~100 MB to hold. `margin run` forks this process right after loading its inputs —
before litellm is imported, so the fork is small and holds the parsed suites — and the child
imports that stack (and compiles the report's templates) while the calls run, then says "ready".
When the run ends it is handed the run directory; it scores it, writes the report (both
through files: results.json, then the pages) and sends back the lines to print. The run's own
process never imports pandas (unless adaptive repeats or early stopping need it between rounds).

Where fork is unavailable or fails, or the scorer is gone (killed, out of memory) or not ready
READY_S after the calls end, the same work runs in the run's process: a finished run is always
scored. An error or an interrupt in the run stops the scorer at once (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import traceback
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from margin.errors import UserError
from margin.execute.executors.forked import die_with_parent, end_process, fork_with_pipe, readable
from margin.suite.tasks import Suite

READY_S = 120.0
"""How long the run waits, once its calls are done, for a scorer that has not yet said its
imports are loaded; past it the scorer is stopped and the run scored in its own process."""
STOP_S = 5.0
"""How long a scorer stopped early (an error, an interrupt) gets to end before it is killed."""


@dataclass(frozen=True)
class Summary:
    """What the scorer sends back: the lines to print and where its time went."""

    lines: list[str]
    score_s: float
    report_s: float


class Scorer:
    """`with Scorer(suites) as scorer: …; summary = scorer.finish(folder)` — the fork at the
    `with`, the scoring at `finish`."""

    def __init__(self, suites: list[Suite]) -> None:
        self.suites = suites
        self.child: ForkProcess | None = None
        self.conn: Connection | None = None
        self.ready = False

    def __enter__(self) -> Scorer:
        if not hasattr(os, "fork"):
            return self  # scored in this process at the end
        forked = fork_with_pipe(_serve, self.suites, os.getpid(), daemon=True)
        if forked is not None:
            self.child, self.conn = forked
        return self

    def finish(self, folder: Path) -> Summary:
        """Score the run directory `folder` and write its report: in the scorer when it is
        there and ready (its imports loaded, at the latest READY_S from now), else here."""
        answer: Any = None
        if self._ready() and self.conn is not None:
            with suppress(EOFError, OSError):
                self.conn.send(str(folder))
                if self._readable(None):
                    answer = self.conn.recv()
        if answer is None:  # no scorer, or it ended without an answer: score here
            self._stop()
            answer = _score(str(folder), self.suites)
        return _summary(answer)

    def _ready(self) -> bool:
        """Whether the scorer said "ready" (waiting up to READY_S for it)."""
        if not self.ready and self.conn is not None and self._readable(READY_S):
            with suppress(EOFError, OSError):
                self.ready = self.conn.recv() == "ready"
        return self.ready

    def _readable(self, timeout_s: float | None) -> bool:
        """Whether the scorer's next message came within `timeout_s` (None: for as long as
        the scorer lives); False when it ended without one."""
        return (
            self.conn is not None
            and self.child is not None
            and readable(self.conn, self.child, timeout_s)
        )

    def _stop(self, at_once: bool = True) -> None:
        """End the scorer: SIGTERM (it removes any file it was writing) at once, or after
        STOP_S when it is expected to end on its own (not `at_once`); SIGKILL STOP_S later."""
        if self.conn is not None:
            self.conn.close()  # the scorer reads end-of-file
            self.conn = None
        if self.child is not None:
            end_process(self.child, STOP_S, at_once)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # After its answer the scorer ends on its own; an error or an interrupt stops it now,
        # not after its imports.
        self._stop(at_once=kind is not None)


def _serve(conn: Connection, parents: Connection, suites: list[Suite], parent: int) -> None:
    """The scorer: import the scoring stack, say "ready", wait for a run directory, score it,
    answer. `parents`, the run's end of the pipe, is closed here, so that the run closing its
    own copy ends this process. SIGTERM ends it through SystemExit, so a file it was writing
    is removed on the way out."""
    parents.close()
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    failed = _prepare()  # the stack is loaded, the templates compiled, before the run ends
    try:
        conn.send("ready")
        folder = conn.recv()
    except (EOFError, OSError):
        return  # the run ended without asking (an error, an interrupt)
    answer = failed or _score(folder, suites)
    try:
        conn.send(answer)
    except OSError:
        return
    except Exception:  # an answer that does not pickle: say so in a form that does
        conn.send(("error", traceback.format_exc()))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(1)


def _prepare() -> tuple[str, str] | None:
    """Load the scoring stack and compile the report's templates: None, or ("error",
    traceback) when that failed (the scorer then answers with it)."""
    try:
        # lazy: the scoring stack loads in the scorer while the calls run, never in the run's
        # own process (but where fork is unavailable or the scorer is gone)
        from margin.cli.run_summary import prepare

        prepare()
    except Exception:
        return ("error", traceback.format_exc())
    return None


def _score(folder: str, suites: list[Suite]) -> tuple[Any, ...]:
    """("ok", lines, score_s, report_s) for the run directory `folder`, ("user", message, path,
    line, field) for a UserError, ("error", traceback) for a bug."""
    try:
        # lazy: as in _prepare (in the scorer, already loaded by it)
        from margin.cli.run_summary import summary_lines

        lines, score_s, report_s = summary_lines(Path(folder), suites)
    except UserError as exc:
        return ("user", exc.message, exc.path, exc.line, exc.field)
    except Exception:
        return ("error", traceback.format_exc())
    return ("ok", lines, score_s, report_s)


def _summary(answer: tuple[Any, ...]) -> Summary:
    """The scorer's answer as a Summary, or its error raised here."""
    kind, *rest = answer
    if kind == "user":
        message, path, line, field = rest
        raise UserError(message, path=path, line=line, field=field)
    if kind == "error":
        raise RuntimeError(f"scoring the run failed:\n{rest[0]}")
    lines, score_s, report_s = rest
    return Summary(list(lines), float(score_s), float(report_s))
