"""Keeps one SMSC connection logged in, whatever the protocol.

Each role (SMPP: a transceiver, or a transmitter plus a receiver; UCP and CIMD2: one session)
has a keeper task that opens a session, waits for it to close and opens the next one after
the `reconnect_s` backoff (the n-th consecutive failure waits the n-th value, the last one
repeating) with +-20 % jitter, so that many connectors do not reconnect in step. Submits go
through the transmitting session (the first role) with the connection's `tps` token bucket
and the link-wide throttling pause: after the SMSC said "slow down" every submit waits, the
pause doubling while the SMSC keeps refusing and resetting on success.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.ratelimit import TokenBucket
from .metrics import Metrics
from .session import LinkDown, LoginRefused, Session

log = logging.getLogger(__name__)

THROTTLE_FIRST_S = 0.25
THROTTLE_MAX_S = 8.0


def backoff(schedule: list[float], failures: int) -> float:
    """The wait after `failures` consecutive failures (1 = the first), with +-20 % jitter."""
    base = schedule[min(failures, len(schedule)) - 1]
    return base * random.uniform(0.8, 1.2)


class Link:
    """The login of one connection; see the module docstring.

    `open_session(role)` connects and logs in one session (raising LoginRefused, OSError,
    TimeoutError or LinkDown); `on_state(bound)` is called when the transmitting side comes up
    or goes down (the connector pauses and resumes its queue consumer); `on_event(kind,
    detail)` reports logins, failed logins and closes for the channel logs.
    """

    def __init__(
        self,
        connection,
        roles: list[str],
        open_session: Callable[[str], Awaitable[Session]],
        metrics: Metrics,
        on_state: Callable[[bool], Any] = lambda bound: None,
        on_event: Callable[[str, dict], Any] = lambda kind, detail: None,
        throttle_first_s: float = THROTTLE_FIRST_S,
    ):
        self.connection = connection
        self.roles = roles
        self.open_session = open_session
        self.metrics = metrics
        self.on_state = on_state
        self.on_event = on_event
        self.sessions: dict[str, Session | None] = dict.fromkeys(self.roles)
        self.bucket = TokenBucket(connection.tps) if connection.tps > 0 else None
        self.throttle_first_s = throttle_first_s
        self._throttle_s = throttle_first_s
        self._resume_at = 0.0
        self._stopping = False
        self._keepers: list[asyncio.Task] = []
        self._bound_events: dict[str, asyncio.Event] = {role: asyncio.Event() for role in self.roles}
        self._in_flight = metrics.IN_FLIGHT.labels(connection.name)

    @property
    def tx(self) -> Session | None:
        session = self.sessions[self.roles[0]]
        return session if session is not None and session.bound else None

    @property
    def bound(self) -> bool:
        return self.tx is not None

    @property
    def throttled_now(self) -> bool:
        return time.monotonic() < self._resume_at

    def start(self) -> None:
        self._keepers = [asyncio.ensure_future(self._keep(role)) for role in self.roles]

    async def wait_bound(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._bound_events[self.roles[0]].wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ submitting

    async def submit(self, part):
        """One submit through the transmitting session, after the throttling pause and the
        token bucket; raises LinkDown at once when not logged in (the caller requeues)."""
        while (delay := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        if self.bucket is not None:
            await self.bucket.take()
        session = self.tx
        if session is None:
            raise LinkDown("not bound")
        self._in_flight.inc()
        try:
            return await session.submit(part)
        finally:
            self._in_flight.dec()

    def throttled(self) -> float:
        """The SMSC said slow down: pause every submit of the link. Returns the pause (s)."""
        now = time.monotonic()
        if now < self._resume_at:
            return self._resume_at - now  # already paused by another throttled submit
        pause = self._throttle_s
        self._throttle_s = min(self._throttle_s * 2, THROTTLE_MAX_S)
        self._resume_at = now + pause
        log.warning("SMSC throttling; submits paused", extra={"connection": self.connection.name, "pause_s": round(pause, 3)})
        return pause

    def accepted(self) -> None:
        """A submit went through: the next throttling starts from the shortest pause again."""
        if self._throttle_s != self.throttle_first_s and time.monotonic() >= self._resume_at:
            self._throttle_s = self.throttle_first_s

    # ------------------------------------------------------------------ keeping the login

    async def _keep(self, role: str) -> None:
        name = self.connection.name
        protocol = self.metrics.protocol.upper()
        failures = 0
        while not self._stopping:
            try:
                session = await self.open_session(role)
            except asyncio.CancelledError:
                raise
            except (LoginRefused, OSError, TimeoutError, LinkDown) as exc:
                failures += 1
                wait = backoff(self.connection.reconnect_s, failures)
                reason = str(exc) or type(exc).__name__
                log.error(f"{protocol} bind failed; retrying", extra={"connection": name, "bind": role, "error": reason,
                                                                      "retry_in_s": round(wait, 2), "failures": failures})  # fmt: skip
                self.on_event("bind_failed", {"bind": role, "error": reason, "retry_in_s": round(wait, 2)})
                await asyncio.sleep(wait)
                continue
            failures = 0
            self.sessions[role] = session
            self._bound_events[role].set()
            self.metrics.BOUND.labels(name, role).set(1)
            log.info(f"{protocol} bound", extra={"connection": name, "bind": role, "host": self.connection.host,
                                                 "port": self.connection.port})  # fmt: skip
            self.on_event("bound", {"bind": role})
            if role == self.roles[0]:
                self.on_state(True)
            reason = await asyncio.shield(session.closed)
            self._bound_events[role].clear()
            self.metrics.BOUND.labels(name, role).set(0)
            if role == self.roles[0]:
                self.on_state(False)
            if self._stopping:
                return
            log.warning(f"{protocol} session closed; reconnecting", extra={"connection": name, "bind": role, "reason": reason})
            self.on_event("closed", {"bind": role, "reason": reason})
            await asyncio.sleep(backoff(self.connection.reconnect_s, 1))

    async def drain(self, timeout: float) -> bool:
        """Wait (bounded) until no submit awaits its answer; True when none does."""
        session = self.tx
        return True if session is None else await session.wait_idle(timeout)

    async def stop(self) -> None:
        """Log every session out and stop reconnecting."""
        self._stopping = True
        for task in self._keepers:
            if not any(s is not None and s.is_open for s in self.sessions.values()):
                task.cancel()
        await asyncio.gather(*(s.close() for s in self.sessions.values() if s is not None and s.is_open))
        for task in self._keepers:
            task.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
