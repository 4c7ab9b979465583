"""A dependency outage (Redis away) is not a poison message.

Why: a handler that cannot reach Redis used to fail like a crashing handler, so its delivery
went back to the queue every half second and the quorum queue's delivery limit (20) parked
messages in `dead.letters` after ten seconds of outage, many of them already sent.

Now a handler raises :class:`DependencyUnavailable` (or lets a Redis connection error
through, see :func:`is_dependency_error`) and the :class:`~services.core.broker.Consumer`
hands the delivery to the process's :class:`OutageGate`:

- every consumer of the process stops taking new deliveries (basic.cancel);
- the held deliveries stay unacked with us: no nack, so no delivery attempt is spent;
- one probe (a Redis PING without retries) runs every `interval` seconds; when it answers,
  the held handlers run again and the consumers consume again, within about `interval`.

A worker killed while it holds messages loses nothing: the broker redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.exceptions

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 1.0


class DependencyUnavailable(Exception):
    """Raised by a handler when a store it needs (Redis) cannot be reached.

    The delivery is held, not requeued. Raise it only before the handler started any
    publish or any send for this delivery: the handler runs again from the start."""

    def __init__(self, dependency: str = "redis", detail: str = ""):
        self.dependency = dependency
        super().__init__(f"{dependency} unavailable: {detail}" if detail else f"{dependency} unavailable")


# Redis could not be reached or did not answer in time (BusyLoadingError is a ConnectionError).
_REDIS_OUTAGE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def is_dependency_error(exc: BaseException) -> bool:
    return isinstance(exc, (DependencyUnavailable, *_REDIS_OUTAGE))


class Holder(Protocol):
    async def hold(self) -> None: ...

    async def unhold(self) -> None: ...


class OutageGate:
    """One per process: while it is down, its holders do not consume and handlers wait."""

    def __init__(self, probe: Callable[[], Awaitable[object]], *, interval: float = PROBE_INTERVAL_S):
        self.probe = probe
        self.interval = interval
        self.holders: list[Holder] = []
        self._up = asyncio.Event()
        self._up.set()
        self._probing: asyncio.Task | None = None
        self._since = 0.0
        self.outages = 0

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def register(self, holder: Holder) -> None:
        self.holders.append(holder)

    def down(self, exc: BaseException) -> None:
        """A handler met the outage: hold every consumer and probe until it is over."""
        if not self._up.is_set():
            return
        self._up.clear()
        self.outages += 1
        self._since = time.monotonic()
        log.warning("dependency unavailable; holding messages and pausing consumers until it answers",
                    extra={"error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
        self._probing = asyncio.ensure_future(self._probe_until_up())

    async def wait_up(self) -> None:
        await self._up.wait()

    async def _probe_until_up(self) -> None:
        for holder in list(self.holders):
            await _quietly(holder.hold())
        while True:
            try:
                await asyncio.wait_for(self.probe(), PROBE_TIMEOUT_S)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(self.interval)
        self._up.set()
        log.warning("dependency back; resuming", extra={"outage_s": round(time.monotonic() - self._since, 2)})
        for holder in list(self.holders):
            await _quietly(holder.unhold())

    async def close(self) -> None:
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probing


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception:
        log.warning("could not hold or release a consumer", exc_info=True)
