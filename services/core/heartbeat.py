"""Worker heartbeats on `sms.health` (CONTRACT section 12), so that a dashboard sees which
workers live, what they consume and how each SMSC bind is doing without scraping processes.

Every `Runtime` starts one :class:`HeartbeatPublisher` when it connects. Every
`SWITCHBOARD_HEARTBEAT_S` seconds (5 by default) it publishes one :class:`Heartbeat` to
`sms.health` with routing key `health.<service>.<instance>`. Like ChannelLogs these are
observability, not data: published on a channel without confirms, not persistent, with a
per-message expiration of 30 s (a heartbeat nobody read in time is worthless), and dropped
with a rate-limited warning while the broker is away.

What a heartbeat says comes from the runtime (the queues its consumers read, their in-flight
deliveries, the `switchboard_messages_total` counters of the service) plus any number of
*sources*: callables that return extra fields. An SMSC connector registers one that returns
an :class:`SmscHealth` (see :meth:`HeartbeatPublisher.add_source`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import aio_pika
from prometheus_client import REGISTRY

from .models import Heartbeat, new_uuid, now_iso
from .settings import Settings

log = logging.getLogger(__name__)

#: A heartbeat nobody consumed within this long is dropped by the broker (per-message TTL).
EXPIRATION_S = 30
#: The dashboard calls a worker stale after this many missed heartbeats.
MISSED_BEATS_STALE = 3

BindState = Literal["bound", "connecting", "throttled", "unbound"]


@dataclass
class SmscHealth:
    """What an SMSC connector (SMPP, UCP, CIMD2) reports about its link in each heartbeat.

    `window` is the number of submits awaiting their answer, `window_max` the connection's
    configured window; `tps` is the submit rate measured since the previous heartbeat (see
    :class:`RateMeter`), `tps_limit` the configured cap (0 = none); `last_error` the last bind
    or submit error, secrets already removed."""

    connection: str
    protocol: Literal["smpp", "ucp", "cimd2"]
    state: BindState
    window: int = 0
    window_max: int | None = None
    tps: float = 0.0
    tps_limit: float | None = None
    last_error: str | None = None


Source = Callable[[], "SmscHealth | dict[str, Any] | None"]


class RateMeter:
    """Turns a running total into a rate per second since the previous call."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def rate(self, total: float) -> float:
        now = time.monotonic()
        last, self._last = self._last, (now, total)
        if last is None or now <= last[0]:
            return 0.0
        return round(max(total - last[1], 0) / (now - last[0]), 2)


def instance_id() -> str:
    """Unique per process and usable as one routing-key word: `<host>-<pid>-<4 hex>`."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{new_uuid()[-4:]}"


def service_counters(service: str) -> dict[str, int]:
    """The service's `switchboard_messages_total` by outcome (what its consumers handled)."""
    counters: dict[str, int] = {}
    for metric in REGISTRY.collect():
        if metric.name != "switchboard_messages":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("service") == service:
                counters[sample.labels.get("outcome", "ok")] = int(sample.value)
    return counters


class HeartbeatPublisher:
    """Publishes this process's heartbeat every `interval_s`; see the module docstring.

    `describe()` returns the runtime's part (queues, in_flight, counters) as a dict."""

    def __init__(
        self,
        connection,
        settings: Settings,
        service: str,
        describe: Callable[[], dict[str, Any]] = dict,
        *,
        interval_s: float | None = None,
    ):
        self.connection = connection
        self.exchange_name = settings.name("sms.health")
        self.service = service
        self.instance = instance_id()
        self.describe = describe
        self.interval_s = interval_s or settings.heartbeat_s
        self.started_on = now_iso()
        self.sources: list[Source] = []
        self.sent = 0
        self._channel = None
        self._exchange = None
        self._task: asyncio.Task | None = None
        self._last_warning = 0.0
        self._host = socket.gethostname()

    def add_source(self, source: Source) -> None:
        """Add fields to every heartbeat: `source()` returns an SmscHealth, a dict or None."""
        self.sources.append(source)

    @property
    def routing_key(self) -> str:
        return f"health.{self.service}.{self.instance}"

    def build(self) -> Heartbeat:
        fields: dict[str, Any] = {"queues": [], "in_flight": 0, "counters": service_counters(self.service)}
        fields.update(self.describe())
        for source in self.sources:
            try:
                extra = source()
            except Exception as exc:  # a broken source must not stop the heartbeat
                log.warning("heartbeat source failed", extra={"error": repr(exc)})
                continue
            if isinstance(extra, SmscHealth):
                extra = asdict(extra)
            if extra:
                fields.update(extra)
        return Heartbeat(
            service=self.service, instance=self.instance, host=self._host, pid=os.getpid(),
            started_on=self.started_on, interval_s=self.interval_s, **fields,
        )  # fmt: skip

    async def start(self) -> HeartbeatPublisher:
        self._channel = await self.connection.channel(publisher_confirms=False)
        self._exchange = await self._channel.declare_exchange(self.exchange_name, "topic", durable=True)
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.interval_s)

    async def beat(self) -> None:
        """Publish one heartbeat now; a broker that is away costs a (rate-limited) warning."""
        try:
            body = self.build().to_bytes()
            message = aio_pika.Message(
                body, content_type="application/json", message_id=new_uuid(),
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT, expiration=EXPIRATION_S,
            )  # fmt: skip
            await asyncio.wait_for(self._exchange.publish(message, self.routing_key, mandatory=False), self.interval_s)
            self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_warning >= 60:
                self._last_warning = now
                log.warning("heartbeat not published", extra={"error": repr(exc)})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
