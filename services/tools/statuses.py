"""A private tail of `sms.status`: an exclusive, auto-deleted queue that dies with the tool.

Dashboards and tools must not read `status.updates` (that is the flow engine's feed, and
reading it would steal its messages), so each tail binds its own queue (CONTRACT section 4).
"""

from __future__ import annotations

import asyncio

import orjson
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from ..core.models import Status
from ..core.settings import Settings
from .common import ToolError

STATUSES: tuple[str, ...] = Status.__args__


def status_binding(channel_uuid: str | None = None, status: str | None = None) -> str:
    """The `sms.status` binding key for a channel and/or a status (`status.<status>.<channel>`)."""
    if status is not None and status not in STATUSES:
        raise ToolError(f"unknown status {status!r}: one of {', '.join(STATUSES)}", exit_code=2)
    return f"status.{status or '*'}.{channel_uuid.lower() if channel_uuid else '*'}"


class StatusFeed:
    """Statuses as they are published, parsed; bind it before publishing what you wait for."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict] = asyncio.Queue()

    @classmethod
    async def open(cls, connection: AbstractConnection, settings: Settings, binding: str) -> StatusFeed:
        feed = cls()
        channel = await connection.channel()
        exchange = await channel.declare_exchange(settings.name("sms.status"), "topic", durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=binding)
        await queue.consume(feed._on_message, no_ack=True)
        return feed

    def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            body = orjson.loads(message.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            # Someone published garbage to sms.status: show it rather than hide it.
            body = {"status": "?", "routing_key": message.routing_key, "raw": message.body.decode("utf-8", "replace")}
        self._queue.put_nowait(body)

    async def next(self) -> dict:
        return await self._queue.get()
