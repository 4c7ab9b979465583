"""The dashboard reads only the broker.

- Three queues of its own, exclusive and auto-deleted (gone when the dashboard is), bound to
  `sms.status` (`status.#`), `sms.health` (`health.#`) and `sms.dead` (`#`). They are
  consumed without acks and capped at FEED_MAX_LENGTH messages (oldest dropped first), so a
  dashboard that falls behind costs the broker bounded memory and never touches the
  flow engine's `status.updates` or the `dead.letters` queue.
- Queue depths and consumer counts by passive declare, every QUEUES_EVERY_S, each on a fresh
  channel: a passive declare of a missing queue closes its channel, and a robust aio-pika
  channel would remember (and re-declare) what was declared on it. So each one opens a
  plain aiormq channel on the connection underneath and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiormq

from ..core.broker import queue_bindings
from ..core.settings import Settings
from .board import Board

log = logging.getLogger(__name__)

FEED_MAX_LENGTH = 20_000
QUEUES_EVERY_S = 5.0
FEEDS = {  # exchange -> binding key of the dashboard's own queue
    "sms.status": "status.#",
    "sms.health": "health.#",
    "sms.dead": "#",
}


class Feeds:
    def __init__(self, connection, settings: Settings, board: Board, *, queues_every_s: float = QUEUES_EVERY_S):
        self.connection = connection
        self.settings = settings
        self.board = board
        self.queues_every_s = queues_every_s
        self._channel = None
        self._task: asyncio.Task | None = None
        self.queue_names: list[str] = []  # the server-named feed queues

    async def start(self) -> Feeds:
        await self._subscribe()
        # after a reconnect the plain channel is gone: subscribe again (new server-named queues)
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        self._task = asyncio.ensure_future(self._poll_queues())
        return self

    async def _subscribe(self) -> None:
        """Declare and consume the three feed queues on a plain aiormq channel: an aio-pika
        consumer costs a second task and an IncomingMessage per delivery, about as much CPU
        as everything the board does with a status (bench/scenarios/dashboard.py)."""
        channel = self._channel = await self.connection.transport.connection.channel()
        handlers = {"sms.status": self._on_status, "sms.health": self._on_heartbeat, "sms.dead": self._on_dead}
        self.queue_names = []
        for exchange, key in FEEDS.items():
            await channel.exchange_declare(self.settings.name(exchange), exchange_type="topic", durable=True)
            declared = await channel.queue_declare(
                "", exclusive=True, auto_delete=True,
                arguments={"x-max-length": FEED_MAX_LENGTH, "x-overflow": "drop-head"},
            )  # fmt: skip
            await channel.queue_bind(declared.queue, self.settings.name(exchange), routing_key=key)
            await channel.basic_consume(declared.queue, handlers[exchange], no_ack=True)
            self.queue_names.append(declared.queue)

    async def _on_reconnect(self, *_args) -> None:
        try:
            await self._subscribe()
            log.info("dashboard feeds subscribed again after a reconnect")
        except Exception as exc:  # the next reconnect tries again
            log.warning("dashboard feeds not subscribed after a reconnect", extra={"error": repr(exc)})

    async def _on_status(self, message) -> None:
        self.board.add_status(message.body)

    async def _on_heartbeat(self, message) -> None:
        self.board.add_heartbeat(message.body)

    async def _on_dead(self, message) -> None:
        self.board.add_dead(message.header.properties.headers, message.routing_key or "")

    def default_queues(self) -> list[str]:
        return [self.settings.name(name) for name in queue_bindings(self.settings)]

    async def _poll_queues(self) -> None:
        while True:
            try:
                await self.poll_queues()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: try again next round
                log.warning("queue depths not read", extra={"error": repr(exc)})
            await asyncio.sleep(self.queues_every_s)

    async def poll_queues(self) -> None:
        for name in self.board.queue_names(self.default_queues()):
            messages, consumers = await self.inspect(name)
            self.board.set_queue(name, messages, consumers, time.time())

    async def inspect(self, name: str) -> tuple[int | None, int | None]:
        """(messages, consumers) of queue `name` by passive declare on a fresh channel; (None,
        None) when it does not exist."""
        transport = self.connection.transport  # None while the robust connection reconnects
        if transport is None or transport.connection.is_closed:  # lost, not yet noticed by aio-pika
            raise ConnectionError("broker connection is reconnecting")
        channel = await transport.connection.channel()  # plain aiormq: nothing is remembered
        try:
            ok = await channel.queue_declare(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None, None
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
        return ok.message_count, ok.consumer_count

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connection.reconnect_callbacks.discard(self._on_reconnect)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
