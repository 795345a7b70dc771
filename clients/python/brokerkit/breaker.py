"""A consecutive-failure circuit breaker, in the manner of Go's robust package (and sony/gobreaker)."""

from __future__ import annotations

import enum
import time
from typing import Callable

from .errors import CircuitOpen


class BreakerState(str, enum.Enum):
    """closed: calls pass; open: calls fail at once; half-open: one probe is let through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __str__(self) -> str:
        return self.value


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` seconds lets one probe through,
    whose success closes it and whose failure opens it again. A threshold of 0 disables it.
    Cancellations are neither successes nor failures: do not report them."""

    def __init__(self, threshold: int = 10, cooldown: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(threshold, 0)
        self.cooldown = max(cooldown, 0.0)
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> None:
        """Raises CircuitOpen unless a call may go ahead now."""
        if self.threshold == 0:
            return
        st = self.state
        if st is BreakerState.OPEN or (st is BreakerState.HALF_OPEN and self._probing):
            wait = max(self.cooldown - (self._clock() - self._opened_at), 0.0)
            raise CircuitOpen(f"circuit breaker open after {self._failures} consecutive failures; "
                              f"next probe in {wait:.1f}s")
        if st is BreakerState.HALF_OPEN:
            self._state, self._probing = BreakerState.HALF_OPEN, True

    def success(self) -> None:
        self._failures, self._probing, self._state = 0, False, BreakerState.CLOSED

    def failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self.threshold and (self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold):
            self._state, self._opened_at = BreakerState.OPEN, self._clock()
