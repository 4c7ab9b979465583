"""The inbound edge's runtime: channels, the broker connection and its publisher, Redis.

It wraps `services.core.service.Runtime` (the same settings, channels loading and reload,
topology and confirming publisher as every worker) and adds what an HTTP edge needs on top:
publishes bounded by a short timeout (a provider must not wait on a reconnecting
connection), a readiness check, and ChannelLogs queued on the shared unconfirmed
`ChannelLogPublisher` (services/core/channel_logs.py), so that they never delay an answer.
"""

from __future__ import annotations

import logging

from ..core.channel_logs import ChannelLogPublisher
from ..core.logs import OncePerSecond
from ..core.service import Runtime
from .common import PUBLISH_TIMEOUT_S, BrokerUnavailable
from .dedupe import Deduplicator

log = logging.getLogger(__name__)


class Edge:
    def __init__(self, runtime: Runtime, publish_timeout: float = PUBLISH_TIMEOUT_S):
        self.runtime = runtime
        self.settings = runtime.settings
        self.public_base = runtime.settings.public_base
        self.publish_timeout = publish_timeout
        self.logs: ChannelLogPublisher | None = None
        self._dedupe: Deduplicator | None = None
        self._warnings = OncePerSecond()

    @property
    def registry(self):
        return self.runtime.registry

    @property
    def dedupe(self) -> Deduplicator:
        if self._dedupe is None:
            self._dedupe = Deduplicator(self.runtime.redis, self.settings.name(""))
        return self._dedupe

    async def start(self) -> None:
        """Connect (retrying until the broker answers), declare the topology, open the publishers."""
        await self.runtime.connect()
        self.logs = await ChannelLogPublisher(self.runtime.connection, self.settings, self.runtime.name).start()

    def reload(self) -> None:
        """SIGHUP: re-read the channels file; a broken file keeps the previous channels."""
        self.runtime.reload()

    def ready(self) -> bool:
        """The broker connection is open (the robust connection is not reconnecting)."""
        connection = self.runtime.connection
        if connection is None or self.runtime.publisher is None or connection.is_closed:
            return False
        transport = connection.transport  # None, or closed, as soon as the socket is lost
        return connection.connected.is_set() and transport is not None and not transport.connection.is_closed

    async def publish(self, exchange: str, routing_key: str, body: bytes, message_id: str) -> None:
        """Publish and wait for the confirm, or raise BrokerUnavailable within the timeout."""
        if not self.ready():
            raise BrokerUnavailable()
        try:
            await self.runtime.publisher.publish(exchange, routing_key, body, message_id=message_id, timeout=self.publish_timeout)
        except Exception as exc:  # timeout, nack, unroutable, channel or connection closed
            self._warn("publish failed; answering 503", exchange, exc)
            raise BrokerUnavailable() from None

    def log_request(self, channel_uuid: str, log_uuid: str, body: bytes) -> None:
        """Queue a request's ChannelLog: published unconfirmed, dropped when the broker is away."""
        if self.logs is not None:
            self.logs.add_body(channel_uuid, body, log_uuid)

    def _warn(self, message: str, exchange: str, exc: Exception) -> None:
        """At most one warning a second: a broker outage must not flood the logs."""
        suppressed = self._warnings.allow()
        if suppressed is None:
            return
        log.warning(
            message,
            extra={"exchange": exchange, "error": f"{type(exc).__name__}: {exc}", "suppressed": suppressed},
        )

    async def close(self, timeout: float = 3.0) -> None:
        """Publish the queued ChannelLogs (bounded), then close broker and Redis."""
        if self.logs is not None:
            await self.logs.close(timeout)
        await self.runtime.close()
