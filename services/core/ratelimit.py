"""The `tps` cap shared by every transport (a channel's for HTTP, a bind's for SMPP)."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """At most `rate` takes per second with bursts of up to `burst` (default `rate`), as GCRA.

    Each caller reserves its slot before sleeping, so concurrent senders queue fairly and the
    rate holds however many are in flight.
    """

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.interval = 1.0 / rate
        self.tolerance = (max(1.0, burst if burst is not None else rate) - 1) * self.interval
        self._tat = 0.0  # theoretical arrival time of the next take

    async def take(self) -> None:
        now = time.monotonic()
        tat = max(self._tat, now)
        self._tat = tat + self.interval
        wait = tat - self.tolerance - now
        if wait > 0:
            await asyncio.sleep(wait)
