"""A circuit breaker per upstream API. Pure: time comes from a clock function.

closed --(N consecutive failures)--> open --(reset seconds)--> half-open
half-open lets one probe through: success closes, failure opens again.
While open (or while a probe is out) callers are refused at once, with the
seconds until the next probe, so a down upstream costs clients no waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Breaker:
    failures_to_open: int
    reset_seconds: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = field(default=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_seconds else "open"

    def retry_after(self) -> int:
        """Whole seconds until the next probe may go (at least 1)."""
        if self.opened_at is None:
            return 1
        return max(1, math.ceil(self.opened_at + self.reset_seconds - self.clock()))

    def allow(self) -> bool:
        """May a request go upstream now? In half-open, only the one probe may."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.failures_to_open:
            self.opened_at, self.probing = self.clock(), False

    def abandon(self) -> None:
        """The request ended without telling anything (cancelled): free the probe."""
        self.probing = False
