"""ChannelLogs, published in batches on their own unconfirmed AMQP channel.

Channel logs are the one body we publish WITHOUT publisher confirms, a deliberate exception
to CONTRACT section 4 ("every message is ... published with publisher confirms"): they are
observability, not data. A request or a PDU exchange causes one, and a confirmed publish per
log would cost as much as the message it describes (a confirm round trip, a lock, a future
and a socket write each). So `ChannelLogPublisher.add` only queues the body; once per event
loop turn one task writes everything queued as a single socket write on a channel opened
without confirms. Still persistent, `application/json` and with a `message_id`, like every
other body.

What that costs: a log written just before a broker crash may be lost, and while the broker
is away (or the buffer of `max_buffered` logs is full) new logs are dropped and counted in
`switchboard_channel_logs_dropped_total{service}`, never waited for. A message, a status or
an event is never affected: those keep going through the confirming `broker.Publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from prometheus_client import Counter

from .models import ChannelLog
from .settings import Settings

log = logging.getLogger(__name__)

LOGS_DROPPED = Counter(
    "switchboard_channel_logs_dropped_total", "ChannelLogs not published (broker away or buffer full)", ["service"]
)
MAX_BUFFERED = 10_000
# One socket write carries at most about this many bytes of logs (a backlog after an outage
# goes out in a few writes, not one huge buffer).
WRITE_BYTES = 256 * 1024


class ChannelLogPublisher:
    """Queue ChannelLogs from anywhere (never blocks, never raises); one task publishes them.

    `start()` opens the channel on a (robust) connection; after a reconnect the next flush
    picks up the channel the robust connection re-opened. `close()` publishes what is still
    queued (bounded) and closes the channel.
    """

    def __init__(self, connection, settings: Settings, service: str, max_buffered: int = MAX_BUFFERED):
        self.connection = connection
        self.exchange = settings.name("sms.logs")
        self.max_buffered = max_buffered
        self.dropped = 0  # by this publisher (the counter adds up every publisher of the service)
        self._dropped = LOGS_DROPPED.labels(service)
        self._pending: list[tuple[str, bytes, str | None]] = []
        self._wake = asyncio.Event()
        self._channel = None  # aio-pika robust channel
        self._underlay_channel = None  # its current aiormq channel (a new one after a reconnect)
        self._task: asyncio.Task | None = None
        self._last_warning = 0.0

    async def start(self) -> ChannelLogPublisher:
        self._channel = await self.connection.channel(publisher_confirms=False)
        self._task = asyncio.ensure_future(self._run())
        return self

    def add(self, entry: ChannelLog) -> None:
        """Queue one ChannelLog model."""
        self.add_body(entry.channel_uuid, entry.to_bytes(), entry.uuid)

    def add_body(self, channel_uuid: str, body: bytes, message_id: str | None = None) -> None:
        """Queue one ChannelLog body already serialised (routing key `log.<channel_uuid>`)."""
        if len(self._pending) >= self.max_buffered:
            self._drop(1, "channel log buffer full; logs dropped")
            return
        self._pending.append((f"log.{channel_uuid}", body, message_id))
        if len(self._pending) == 1:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except Exception as exc:  # never let the writer die: the next logs try again
                log.warning("channel logs not published", extra={"error": repr(exc)})

    async def _flush(self) -> None:
        """Write everything queued: one ChannelFrame (one socket write) per WRITE_BYTES."""
        if not self._pending:
            return
        channel = await self._underlay()
        if channel is None:
            batch, self._pending = self._pending, []
            self._drop(len(batch), "broker unavailable; channel logs dropped")
            return
        batch, self._pending = self._pending, []
        frames: list = []
        size = 0
        for routing_key, body, message_id in batch:
            frames.extend(self._publish_frames(channel, routing_key, body, message_id))
            size += len(body)
            if size >= WRITE_BYTES:
                await channel.write_queue.put(ChannelFrame.marshall(channel.number, frames))
                frames, size = [], 0
        if frames:
            await channel.write_queue.put(ChannelFrame.marshall(channel.number, frames))

    def _publish_frames(self, channel, routing_key: str, body: bytes, message_id: str | None) -> list:
        """basic.publish, its content header and body frames (as aiormq's basic_publish builds them)."""
        properties = spec.Basic.Properties(
            content_type="application/json", delivery_mode=2, message_id=message_id or None
        )
        frames: list = [
            spec.Basic.Publish(exchange=self.exchange, routing_key=routing_key, mandatory=False),
            ContentHeader(properties=properties, body_size=len(body)),
        ]
        step = channel.max_content_size
        frames.extend(ContentBody(body[i : i + step]) for i in range(0, len(body), step))
        return frames

    async def _underlay(self):
        """The open aiormq channel, or None when the broker is away right now."""
        channel = self._underlay_channel
        if channel is not None and not channel.is_closed:
            return channel
        if self._channel is None or self._channel.is_closed or not _connected(self.connection):
            return None
        try:
            channel = await asyncio.wait_for(self._channel.get_underlay_channel(), 1.0)
        except Exception:  # reconnecting, or the channel is being re-opened
            return None
        if channel.is_closed:
            return None
        self._underlay_channel = channel
        return channel

    def _drop(self, count: int, message: str) -> None:
        self.dropped += count
        self._dropped.inc(count)
        now = time.monotonic()
        if now - self._last_warning >= 1.0:  # an outage must not flood the logs
            self._last_warning = now
            log.warning(message, extra={"dropped": self.dropped})

    async def close(self, timeout: float = 2.0) -> None:
        """Publish what is still queued (bounded by `timeout`), then close the channel."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), timeout)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()


def _connected(connection) -> bool:
    """The connection is open and (a robust one) not reconnecting right now."""
    if connection.is_closed:
        return False
    connected = getattr(connection, "connected", None)
    return connected is None or connected.is_set()
