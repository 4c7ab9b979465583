"""`switchboard dead list|replay`: inspect and return what was parked in `dead.letters`.

Listing must lose nothing, so messages are taken with basic.get *without* ack and handed
back (nack, requeue) at the end; a crash in between closes the channel, which requeues
them too. basic.get is used rather than a consumer because it is not limited by prefetch
and says plainly when no ready message is left. Each look counts as a delivery for a
quorum queue; `dead.letters` is declared without `x-delivery-limit`
(services.core.broker.queue_arguments), so looking never drops anything.

Replay republishes a body to the exchange and routing key it was first published to,
waits for the broker's confirm, and only then acks it out of `dead.letters`. It handles at
most the messages that were ready when it started, so a body that is still invalid (and
comes straight back) is not replayed in a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ..core.settings import Settings
from .common import ToolError, open_broker

DEAD_QUEUE = "dead.letters"
# Headers that describe the dead-lettering itself; a replayed message starts clean without them.
DEAD_LETTER_HEADERS = frozenset(
    {
        "x-error",
        "x-original-exchange",
        "x-original-routing-key",
        "x-queue",
        "x-service",
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


@dataclass
class DeadLetter:
    """One parked message: where it came from, why it was parked, and what it says."""

    message_id: str | None
    body_id: int | str | None
    channel_uuid: str | None
    reason: str
    exchange: str | None  # the broker name (prefixed) it was first published to; None: unknown
    routing_key: str
    queue: str | None
    service: str | None
    body: bytes = field(repr=False)
    headers: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def replayable(self) -> bool:
        return self.exchange is not None

    def matches(self, ids: set[str]) -> bool:
        """`--id` names the AMQP message_id or the body's `id`."""
        return (self.message_id is not None and self.message_id in ids) or (
            self.body_id is not None and str(self.body_id) in ids
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "id": self.body_id,
            "channel_uuid": self.channel_uuid,
            "reason": self.reason,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "queue": self.queue,
            "service": self.service,
            "body": self.body.decode("utf-8", "replace"),
        }


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    """Read a dead letter's origin and reason from the headers either dead-lettering path writes.

    A consumer that rejects a poison body (services.core.broker.Consumer._dead_letter) writes
    `x-error` and `x-original-exchange`/`x-original-routing-key`; the broker, when a message
    reaches its queue's `x-delivery-limit`, writes `x-death` (most recent event first).
    """
    headers = dict(message.headers or {})
    exchange = _text(headers.get("x-original-exchange"))
    routing_key = _text(headers.get("x-original-routing-key"))
    queue = _text(headers.get("x-queue"))
    reason = _text(headers.get("x-error"))
    deaths = headers.get("x-death")
    if exchange is None and isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        exchange = _text(death.get("exchange"))
        keys = death.get("routing-keys") or []
        routing_key = _text(keys[0]) if keys else None
        queue = _text(death.get("queue"))
        why = _text(death.get("reason")) or "dead-lettered"
        reason = reason or f"{why} in {queue} after {death.get('count', 1)} dead-lettering(s)"
    body_id, channel_uuid = _body_fields(message.body)
    return DeadLetter(
        message_id=_text(message.message_id),
        body_id=body_id,
        channel_uuid=channel_uuid,
        reason=reason or "no reason recorded",
        exchange=exchange,
        routing_key=routing_key if routing_key is not None else (message.routing_key or ""),
        queue=queue,
        service=_text(headers.get("x-service")),
        body=message.body,
        headers=headers,
    )


def _body_fields(body: bytes) -> tuple[int | str | None, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    body_id = data.get("id") if isinstance(data.get("id"), int | str) and not isinstance(data.get("id"), bool) else None
    channel_uuid = data.get("channel_uuid") if isinstance(data.get("channel_uuid"), str) else None
    return body_id, channel_uuid


async def _ready_count(channel: AbstractChannel, settings: Settings) -> int:
    try:
        queue = await channel.declare_queue(settings.name(DEAD_QUEUE), passive=True)
    except aio_pika.exceptions.ChannelClosed:
        raise ToolError(f"queue {settings.name(DEAD_QUEUE)} does not exist: declare it with `switchboard topology`") from None
    return queue.declaration_result.message_count or 0


async def list_dead(settings: Settings, limit: int = 100) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest first; every one of them stays in the queue."""
    async with open_broker(settings) as connection:
        channel = await connection.channel()
        await _ready_count(channel, settings)
        queue = await channel.get_queue(settings.name(DEAD_QUEUE), ensure=False)
        held: list[AbstractIncomingMessage] = []
        try:
            while len(held) < limit:
                message = await queue.get(no_ack=False, fail=False, timeout=10)
                if message is None:
                    break
                held.append(message)
            return [describe(m) for m in held]
        finally:
            for message in held:
                await message.nack(requeue=True)
            await channel.close()


@dataclass
class ReplayResult:
    replayed: list[DeadLetter] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)  # kept in dead.letters, with why


async def replay_dead(
    settings: Settings,
    *,
    ids: set[str] | None = None,
    replay_all: bool = False,
    on_replayed: Callable[[DeadLetter], None] | None = None,
) -> ReplayResult:
    """Send the chosen dead letters back where they came from; ack each only after its confirm."""
    if not replay_all and not ids:
        raise ToolError("say which: --id MESSAGE_ID (repeatable) or --all", exit_code=2)
    result = ReplayResult()
    async with open_broker(settings) as connection:
        source = await connection.channel()
        target = await connection.channel(publisher_confirms=True, on_return_raises=True)
        snapshot = await _ready_count(source, settings)
        queue = await source.get_queue(settings.name(DEAD_QUEUE), ensure=False)
        kept: list[AbstractIncomingMessage] = []
        try:
            for _ in range(snapshot):
                message = await queue.get(no_ack=False, fail=False, timeout=10)
                if message is None:
                    break
                letter = describe(message)
                if not (replay_all or letter.matches(ids or set())):
                    kept.append(message)
                    continue
                if target.is_closed:  # a publish to a vanished exchange closes the channel
                    target = await connection.channel(publisher_confirms=True, on_return_raises=True)
                problem = await _republish(target, letter)
                if problem is None:
                    await message.ack()
                    result.replayed.append(letter)
                    if on_replayed is not None:
                        on_replayed(letter)
                else:
                    kept.append(message)
                    result.refused.append((letter, problem))
        finally:
            for message in kept:
                await message.nack(requeue=True)
            await source.close()
    return result


async def _republish(channel: AbstractChannel, letter: DeadLetter) -> str | None:
    """Publish `letter` to its origin and wait for the confirm; None, or why it was not taken."""
    if not letter.replayable:
        return "its original exchange is unknown (no x-original-exchange or x-death header)"
    headers = {k: v for k, v in letter.headers.items() if k not in DEAD_LETTER_HEADERS}
    message = aio_pika.Message(
        letter.body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=letter.message_id,
        headers=headers or None,
    )
    if letter.exchange:
        exchange = await channel.get_exchange(letter.exchange, ensure=False)
    else:
        exchange = channel.default_exchange
    try:
        await exchange.publish(message, letter.routing_key, mandatory=True, timeout=30)
    except aio_pika.exceptions.PublishError:
        return f"nothing is bound to {letter.exchange or '(default exchange)'} {letter.routing_key} any more"
    except aio_pika.exceptions.DeliveryError:
        return "the broker refused (nacked) the publish"
    except TimeoutError:
        return "the broker did not confirm the publish within 30 s"
    except aio_pika.exceptions.ChannelClosed as exc:
        return f"the broker refused the publish: {exc}"
    return None
