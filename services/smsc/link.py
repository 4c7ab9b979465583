"""Keeps one SMSC connection logged in, whatever the protocol.

Each role (SMPP: a transceiver, or a transmitter plus a receiver; UCP and CIMD2: one session)
has a keeper task that opens a session, waits for it to close and opens the next one after
the `reconnect_s` backoff (the n-th consecutive failure waits the n-th value, the last one
repeating) with +-20 % jitter, so that many connectors do not reconnect in step. A login
that drops within BIND_HELD_S counts as a failure too (an SMSC that accepts and then cuts
the link is not hammered); once a login has held BIND_HELD_S the next reconnect starts
from the first value again. Submits go through the transmitting session (the first role)
with the connection's `tps` token bucket (shared through Redis by every copy of the
connector, :class:`~services.core.ratelimit.SharedTokenBucket`) and the link-wide
throttling pause: after the SMSC said "slow down" every submit waits, the pause doubling
while the SMSC keeps refusing and resetting on success.

`binds: N` (issue 13): with `leases` the link logs in only while it holds one of the
connection's N leases in Redis (:mod:`services.core.leases`); a copy beyond N waits as a
standby and takes over when a holder stops (at once) or dies (within the lease ttl).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.leases import LeaseLost, Leases
from .metrics import Metrics
from .session import LinkDown, LoginRefused, Session

log = logging.getLogger(__name__)

THROTTLE_FIRST_S = 0.25
THROTTLE_MAX_S = 8.0
#: A login that held this long resets the reconnect backoff to its first value.
BIND_HELD_S = 30.0


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
        *,
        bucket=None,
        leases: Leases | None = None,
        held_s: float = BIND_HELD_S,
    ):
        self.connection = connection
        self.roles = roles
        self.open_session = open_session
        self.metrics = metrics
        self.on_state = on_state
        self.on_event = on_event
        self.sessions: dict[str, Session | None] = dict.fromkeys(self.roles)
        self.bucket = bucket  # anything with `async take()`; None: no tps limit
        self.leases = leases
        self.held_s = held_s
        self._leaser: asyncio.Task | None = None
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
        if self.leases is None:
            self._start_keepers()
        else:
            self._leaser = asyncio.ensure_future(self._hold_lease())

    def _start_keepers(self) -> None:
        self._keepers = [asyncio.ensure_future(self._keep(role)) for role in self.roles]

    async def _hold_lease(self) -> None:
        """Log in only while holding one of the connection's leases; a copy that finds them
        all held waits as a standby. A lease found taken by another copy (Redis lost it and
        the other came first) ends this copy's login: it goes back to standby."""
        name = self.connection.name
        while not self._stopping:
            index = await self.leases.acquire()
            log.info("bind lease taken", extra={"connection": name, "lease": index, "binds": len(self.leases.keys)})
            self._start_keepers()
            try:
                await self.leases.hold()
            except LeaseLost as exc:
                log.error("bind lease lost; logging out and waiting as a standby", extra={"connection": name, "error": str(exc)})
                await self._close_sessions()

    async def _close_sessions(self) -> None:
        for task in self._keepers:
            task.cancel()
        await asyncio.gather(*(s.close() for s in self.sessions.values() if s is not None and s.is_open))
        await asyncio.gather(*self._keepers, return_exceptions=True)
        self._keepers = []

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
            bound_at = time.monotonic()
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
            failures = 1 if time.monotonic() - bound_at >= self.held_s else failures + 1
            wait = backoff(self.connection.reconnect_s, failures)
            log.warning(f"{protocol} session closed; reconnecting", extra={"connection": name, "bind": role, "reason": reason,
                                                                           "retry_in_s": round(wait, 2)})  # fmt: skip
            self.on_event("closed", {"bind": role, "reason": reason})
            await asyncio.sleep(wait)

    async def drain(self, timeout: float) -> bool:
        """Wait (bounded) until no submit awaits its answer; True when none does."""
        session = self.tx
        return True if session is None else await session.wait_idle(timeout)

    async def stop(self) -> None:
        """Log every session out and stop reconnecting."""
        self._stopping = True
        if self._leaser is not None:
            self._leaser.cancel()
            await asyncio.gather(self._leaser, return_exceptions=True)
        for task in self._keepers:
            if not any(s is not None and s.is_open for s in self.sessions.values()):
                task.cancel()
        await asyncio.gather(*(s.close() for s in self.sessions.values() if s is not None and s.is_open))
        for task in self._keepers:
            task.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        if self.leases is not None:
            await self.leases.release()  # a standby takes over at its next poll
