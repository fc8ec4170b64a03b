"""The processes `margin run` forks beside itself — the pool's starter and workers, the scorer —
and what they share: a pipe to the run, death with their parent, and a stop that always ends.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def fork_with_pipe(
    target: Callable[..., None], *args: object, daemon: bool
) -> tuple[ForkProcess, Connection] | None:
    """Fork a process running `target(its_end, our_end, *args)` (it closes `our_end`: the pipe
    then ends when this process closes its own) over a duplex pipe — a Unix socket pair, which
    also carries file descriptors. The process and this end; None when it cannot be forked (out
    of processes, or in a daemonic process)."""
    context = get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=target, args=(theirs, mine, *args), daemon=daemon)
    # What the child inherits is frozen there: its collections never walk it. Another thread
    # of this process (an embedding program's, a test's, Ray's) may be changing an object at
    # the instant of the fork, and a collection in the child that met the half-made copy
    # crashed it (a segfault while scoring, seen in a test that ran Ray beside the run).
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        child.start()
    except (OSError, AssertionError):
        mine.close()
        return None
    finally:
        theirs.close()
        if not frozen_before:
            gc.unfreeze()  # here, collected as before
    return child, mine


def readable(conn: Connection, child: ForkProcess, timeout_s: float | None) -> bool:
    """Whether `child`'s next message on `conn` came within `timeout_s` (None: for as long as
    it lives); False when it ended without one."""
    return conn in wait([conn, child.sentinel], timeout_s)


def end_process(child: ForkProcess, grace_s: float, at_once: bool = True) -> None:
    """End `child`: SIGTERM at once, or after `grace_s` when it is expected to end on its own
    (not `at_once`); SIGKILL `grace_s` later."""
    if not at_once:
        child.join(grace_s)
    if child.is_alive():
        child.terminate()
        child.join(grace_s)
    if child.is_alive():
        child.kill()
        child.join()
