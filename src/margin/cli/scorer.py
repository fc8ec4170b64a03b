"""`margin run`'s scoring and report, in a process forked before the calls.

The scoring stack (pandas, pyarrow, scipy, Jinja and margin's statistics) takes most of a second
to import and ~100 MB to hold. `margin run` forks this process right after loading its inputs —
before litellm is imported, so the fork is small and holds the parsed suites — and the child
imports that stack at a lower priority while the calls run. When the run ends it is handed the
run directory; it scores it, writes the report (both through files: results.json, then the
pages) and sends back the lines to print. The run's own process never imports pandas (unless
adaptive repeats or early stopping need it between rounds).

Where fork is unavailable, or the scorer is gone (killed, out of memory), the same work runs in
the run's process: a finished run is always scored.
"""

from __future__ import annotations

import os
import signal
import traceback
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.context import ForkProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from margin.errors import UserError
from margin.execute.executors.pool import die_with_parent
from margin.suite.tasks import Suite

NICENESS = 5
"""How much lower the scorer's priority is: its imports yield a busy core to the calls."""
STOP_S = 5.0
"""How long a scorer no longer needed gets to end before it is killed."""


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

    def __enter__(self) -> Scorer:
        if not hasattr(os, "fork"):
            return self  # scored in this process at the end
        context = get_context("fork")
        mine, theirs = context.Pipe()
        self.child = context.Process(
            target=_serve, args=(theirs, mine, self.suites, os.getpid()), daemon=True
        )
        self.child.start()
        theirs.close()
        self.conn = mine
        return self

    def finish(self, folder: Path) -> Summary:
        """Score the run directory `folder` and write its report: in the scorer when it is
        there, else here."""
        answer: Any = None
        if self.conn is not None:
            with suppress(EOFError, OSError):
                self.conn.send(str(folder))
                answer = self.conn.recv()
        if answer is None:  # no scorer, or it ended without an answer: score here
            answer = _score(str(folder), self.suites)
        return _summary(answer)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.conn is not None:
            self.conn.close()  # the scorer reads end-of-file and exits
        if self.child is not None:
            self.child.join(STOP_S)
            if self.child.is_alive():
                self.child.kill()
                self.child.join()


def _serve(conn: Connection, parents: Connection, suites: list[Suite], parent: int) -> None:
    """The scorer: import the scoring stack, wait for a run directory, score it, answer.
    `parents`, the run's end of the pipe, is closed here, so that the run closing its own
    copy ends this process."""
    parents.close()
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    with suppress(OSError):
        os.nice(NICENESS)
    _score(None, suites)  # imports only: the stack is loaded before the run ends
    try:
        folder = conn.recv()
    except (EOFError, OSError):
        return  # the run ended without asking (an error, an interrupt)
    with suppress(OSError):
        conn.send(_score(folder, suites))


def _score(folder: str | None, suites: list[Suite]) -> tuple[Any, ...] | None:
    """("ok", lines, score_s, report_s) for the run directory `folder`, ("user", message, path,
    line, field) for a UserError, ("error", traceback) for a bug; with no folder, only load the
    scoring stack (None, or the error that loading raised)."""
    try:
        # lazy: the scoring stack loads in the scorer while the calls run, never in the run's
        # own process (but where fork is unavailable or the scorer is gone)
        from margin.cli.run_summary import prepare, summary_lines

        if folder is None:
            prepare()
            return None
        lines, score_s, report_s = summary_lines(Path(folder), suites)
    except UserError as exc:
        return ("user", exc.message, exc.path, exc.line, exc.field)
    except Exception:
        return ("error", traceback.format_exc())
    return ("ok", lines, score_s, report_s)


def _summary(answer: tuple[Any, ...] | None) -> Summary:
    """The scorer's answer as a Summary, or its error raised here."""
    assert answer is not None
    kind, *rest = answer
    if kind == "user":
        message, path, line, field = rest
        raise UserError(message, path=path, line=line, field=field)
    if kind == "error":
        raise RuntimeError(f"scoring the run failed:\n{rest[0]}")
    lines, score_s, report_s = rest
    return Summary(list(lines), float(score_s), float(report_s))
