"""The spending cap of a run directory, held in shared memory so every worker process sees it.

The promise: the spend recorded in a run directory never passes the cap while calls are billed
within their worst case — across resumes (the journal's earlier spend counts), worker processes
(one shared account) and retries; a provider that bills past a call's worst case passes it by
no more than those calls' excess. A call reserves its worst case (its prompt plus `max_tokens`
of answer) *after* it has its slots, just before it is sent, and settles to what the provider
billed when it returns.

Near the cap a worst case that does not fit beside the calls in flight waits for one of them
to settle (most answers are far shorter than `max_tokens`, and a settled call gives back what
it did not use) and asks again. The budget stops only when a worst case does not fit with
nothing in flight anywhere: then no settle can ever make room for it.
"""

from __future__ import annotations

import math
import multiprocessing
from ctypes import c_double

_SPENT, _RESERVED, _STOPPED, _HELD, _SETTLED = range(5)


class Budget:
    """Dollars spent and reserved against an optional cap; safe to share with forked workers."""

    def __init__(self, cap: float | None, spent: float = 0.0) -> None:
        if not (math.isfinite(spent) and spent >= 0):
            raise ValueError(f"the earlier spend must be a finite number of dollars, not {spent}")
        self.cap = cap
        context = multiprocessing.get_context("fork")
        self._lock = context.Lock()
        self._changed = context.Condition(self._lock)
        """Notified when a call settles or the budget stops, in whichever process."""
        self._cells = context.RawArray(c_double, 5)
        self._cells[_SPENT] = spent

    @property
    def spent(self) -> float:
        """Dollars billed so far, earlier invocations of the run included."""
        with self._lock:
            return float(self._cells[_SPENT])

    @property
    def reserved(self) -> float:
        """Dollars held for calls in flight (their worst case)."""
        with self._lock:
            return float(self._cells[_RESERVED])

    @property
    def stopped(self) -> bool:
        """Whether a call was refused because it could never fit under the cap."""
        with self._lock:
            return bool(self._cells[_STOPPED])

    @property
    def settles(self) -> int:
        """How many calls have settled so far: read it before `reserve`, pass it to `wait`."""
        with self._lock:
            return int(self._cells[_SETTLED])

    def reserve(self, amount: float) -> bool:
        """Hold `amount` for a call about to go out. False when it does not fit: then the budget
        has stopped if nothing is in flight (it never will fit), else wait for a settle and ask
        again."""
        with self._lock:
            if self._cells[_STOPPED]:
                return False
            if self.cap is not None:
                if not (math.isfinite(amount) and amount >= 0):
                    self._stop()  # a worst case that is not dollars: no answer to "does it fit"
                    return False
                if self._cells[_SPENT] + self._cells[_RESERVED] + amount > self.cap:
                    if self._cells[_HELD] == 0:
                        self._stop()
                    return False
            self._cells[_RESERVED] += amount
            self._cells[_HELD] += 1
            return True

    def settle(self, reserved: float, billed: float) -> None:
        """A call held `reserved` and was billed `billed` (0 when it failed)."""
        with self._lock:
            self._cells[_HELD] = max(0.0, self._cells[_HELD] - 1)
            # With nothing in flight nothing is held: no rounding left over from the sums.
            left = self._cells[_RESERVED] - reserved if self._cells[_HELD] else 0.0
            self._cells[_RESERVED] = max(0.0, left)
            self._cells[_SPENT] += max(0.0, billed)
            self._cells[_SETTLED] += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until a call settles after `seen` settles (see `settles`) or the budget stops;
        False if `timeout` seconds passed first. Blocks its thread: call it from a thread."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._cells[_SETTLED] != seen or bool(self._cells[_STOPPED]), timeout
            )

    def stop(self) -> None:
        """Refuse every call from now on (in every process)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        self._cells[_STOPPED] = 1.0
        self._changed.notify_all()
