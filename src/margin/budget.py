"""The spending cap of a run directory, held in shared memory so every worker process sees it.

The promise: the spend recorded in a run directory never passes the cap by more than the cost
of the calls in flight when it was reached — across resumes (the journal's earlier spend counts),
worker processes (one shared account) and retries. A call reserves its worst case (its prompt
plus `max_tokens` of answer) *after* it has its slots, just before it is sent, and settles to
what the provider billed when it returns.
"""

from __future__ import annotations

import math
import multiprocessing
from ctypes import c_double

_SPENT, _RESERVED, _STOPPED = 0, 1, 2


class Budget:
    """Dollars spent and reserved against an optional cap; safe to share with forked workers."""

    def __init__(self, cap: float | None, spent: float = 0.0) -> None:
        if not (math.isfinite(spent) and spent >= 0):
            raise ValueError(f"the earlier spend must be a finite number of dollars, not {spent}")
        self.cap = cap
        context = multiprocessing.get_context("fork")
        self._lock = context.Lock()
        self._cells = context.RawArray(c_double, 3)
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
        """Whether a call was refused because it could pass the cap."""
        with self._lock:
            return bool(self._cells[_STOPPED])

    def reserve(self, amount: float) -> bool:
        """Hold `amount` for a call about to go out; False (and stop) if it could pass the cap."""
        with self._lock:
            if self._cells[_STOPPED]:
                return False
            if self.cap is not None and (
                not (math.isfinite(amount) and amount >= 0)  # no answer to "does it fit"
                or self._cells[_SPENT] + self._cells[_RESERVED] + amount > self.cap
            ):
                self._cells[_STOPPED] = 1.0
                return False
            self._cells[_RESERVED] += amount
            return True

    def settle(self, reserved: float, billed: float) -> None:
        """A call held `reserved` and was billed `billed` (0 when it failed)."""
        with self._lock:
            self._cells[_RESERVED] = max(0.0, self._cells[_RESERVED] - reserved)
            self._cells[_SPENT] += max(0.0, billed)
