"""Channel logs of the SMPP connector, published in batches on their own AMQP channel.

Why not through the confirmed publisher like statuses: a message and its receipt cause two
channel logs, and confirmed publishes are the biggest share of the connector's CPU per
message. Channel logs are diagnostics, not messages: they are queued here, written by one
task on an unconfirmed channel, and a log lost in a broker crash (or dropped when the buffer
is full during an outage) costs a diagnostic, never a message or a status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika

from ..core.models import ChannelLog
from ..core.settings import Settings

log = logging.getLogger(__name__)

MAX_BUFFERED = 10_000


class ChannelLogBatcher:
    def __init__(self, connection, settings: Settings, max_buffered: int = MAX_BUFFERED):
        self.connection = connection
        self.settings = settings
        self.max_buffered = max_buffered
        self.dropped = 0
        self._pending: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._exchange = None
        self._channel = None
        self._task: asyncio.Task | None = None

    async def start(self) -> ChannelLogBatcher:
        self._channel = await self.connection.channel(publisher_confirms=False)
        self._exchange = await self._channel.get_exchange(self.settings.name("sms.logs"), ensure=False)
        self._task = asyncio.ensure_future(self._run())
        return self

    def add(self, entry: ChannelLog) -> None:
        """Queue one ChannelLog; never blocks, never raises."""
        if len(self._pending) >= self.max_buffered:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("channel log buffer full; logs dropped", extra={"dropped": self.dropped})
            return
        self._pending.append((f"log.{entry.channel_uuid}", entry.to_bytes()))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        for key, body in batch:
            message = aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            try:
                await self._exchange.publish(message, key, mandatory=False)
            except Exception as exc:
                self.dropped += 1
                log.warning("channel log not published", extra={"error": repr(exc)})

    async def close(self, timeout: float = 2.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), timeout)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
