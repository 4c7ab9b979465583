"""RabbitMQ wiring: topology, a confirming publisher and a consumer helper.

Why not one awaited publish at a time: a confirm round trip costs a broker fsync batch, so
the consumer runs many handlers concurrently (bounded by prefetch) and each handler's
publishes are confirmed together; a delivery is acked only after every publish it caused
was confirmed (CONTRACT section 8, "No loss").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel, ValidationError

from .channels import AGGREGATORS
from .metrics import MESSAGES, PUBLISH_SECONDS
from .models import StatusError, StatusUpdate, new_uuid
from .settings import Settings

log = logging.getLogger(__name__)

EXCHANGES: dict[str, str] = {
    "sms.outbound": "topic",
    "sms.transport": "direct",
    "sms.inbound": "topic",
    "sms.status": "topic",
    "sms.logs": "topic",
    "sms.retry": "direct",
    "sms.dead": "topic",
}
# Nobody is required to listen to channel logs; every other exchange has a default queue,
# so an unroutable publish there is a bug we want to hear about (mandatory + returns raise).
UNROUTED_OK = {"sms.logs"}
PERSISTENT = 2  # delivery_mode
# The broker routes SendRequests itself (services/outbound/bindings.py): `sms.outbound` passes
# every `send.#` to CHANNELS (exchange-to-exchange), where the router keeps one binding per
# channel to its transport queue. CHANNELS' alternate exchange takes what no binding matched
# (an unknown channel, or one bound a moment from now) to the router's queue. The alternate
# exchange sits on a new exchange because an argument cannot be added to an exchange that
# deployments already declared (PRECONDITION_FAILED), and everyone who declares it would have
# to repeat the argument. CHANNELS is internal: only `sms.outbound` feeds it.
CHANNELS = "sms.outbound.channels"
UNBOUND = "sms.outbound.unbound"
DELIVERY_LIMIT = 20


def queue_bindings(
    settings: Settings, connections: list[str] = (), transports: list[str] = ()
) -> dict[str, tuple[str, list[str]]]:
    """Default queues of CONTRACT section 4 (unprefixed name -> (exchange, routing keys)).
    `connections`: SMPP connection names; `transports`: SMSC transport keys of any protocol
    (`ucp.<name>`, as `Registry.transports` gives them)."""
    queues: dict[str, tuple[str, list[str]]] = {
        "outbound.router": (UNBOUND, [""]),
        "transport.external": ("sms.transport", ["external"]),
        "inbound.messages": ("sms.inbound", ["msg.#", "event.#"]),
        "status.updates": ("sms.status", ["status.#"]),
        "dead.letters": ("sms.dead", ["#"]),
    }
    for name in AGGREGATORS:
        queues[f"transport.rest.{name}"] = ("sms.transport", [f"rest.{name}"])
    for name in connections:
        queues[f"transport.smpp.{name}"] = ("sms.transport", [f"smpp.{name}"])
    for key in transports:
        queues[f"transport.{key}"] = ("sms.transport", [key])
    for delay in settings.retry_delays_ms:
        queues[f"retry.{delay}"] = ("sms.retry", [str(delay)])
    return queues


def queue_arguments(settings: Settings, name: str) -> dict[str, Any]:
    args: dict[str, Any] = {"x-queue-type": "quorum"}
    if name.startswith("retry."):
        # Expired messages go back to sms.transport under their CC routing key (the
        # transport they came from); at-least-once so a broker restart loses nothing.
        args.update(
            {
                "x-message-ttl": int(name.split(".", 1)[1]),
                "x-dead-letter-exchange": settings.name("sms.transport"),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
    elif name != "dead.letters":
        # A message that crashes its consumer DELIVERY_LIMIT times is parked, not looped on.
        args.update({"x-delivery-limit": DELIVERY_LIMIT, "x-dead-letter-exchange": settings.name("sms.dead")})
    return args


async def declare_topology(
    connection: AbstractRobustConnection, settings: Settings, connections: list[str] = (), transports: list[str] = ()
) -> list[str]:
    """Declare every exchange, queue and binding (idempotent). Returns the queue names."""
    channel = await connection.channel()
    try:
        exchanges = {}
        for name, kind in EXCHANGES.items():
            exchanges[name] = await channel.declare_exchange(settings.name(name), kind, durable=True)
        exchanges[UNBOUND] = await channel.declare_exchange(settings.name(UNBOUND), "fanout", durable=True)
        exchanges[CHANNELS] = await channel.declare_exchange(
            settings.name(CHANNELS), "direct", durable=True, internal=True,
            arguments={"alternate-exchange": settings.name(UNBOUND)},
        )  # fmt: skip
        await exchanges[CHANNELS].bind(exchanges["sms.outbound"], routing_key="send.#")
        declared = []
        for name, (exchange, keys) in queue_bindings(settings, list(connections), list(transports)).items():
            queue = await channel.declare_queue(settings.name(name), durable=True, arguments=queue_arguments(settings, name))
            for key in keys:
                await queue.bind(exchanges[exchange], routing_key=key)
            declared.append(settings.name(name))
        # Before channel bindings the router's queue took every `send.#` from `sms.outbound`;
        # left in place, that binding would send each message twice. Unbinding what is not
        # there is a no-op.
        underlay = await channel.get_underlay_channel()
        await underlay.queue_unbind(settings.name("outbound.router"), settings.name("sms.outbound"), "send.#")
        return declared
    finally:
        await channel.close()


async def delete_topology(connection, settings: Settings, extra_queues: list[str] = ()) -> None:
    """Delete the default queues and every exchange of `settings.prefix`, plus `extra_queues`
    (full names). For tests and benches that declared a prefix of their own; a name that is
    already gone is skipped (each deletion gets its own channel, since a failure closes it)."""
    queues = {settings.name(name) for name in queue_bindings(settings)} | set(extra_queues)
    exchanges = [settings.name(n) for n in (*EXCHANGES, CHANNELS, UNBOUND)]
    for kind, names in (("queue", sorted(queues)), ("exchange", exchanges)):
        for name in names:
            channel = await connection.channel()
            try:
                await (channel.queue_delete(name) if kind == "queue" else channel.exchange_delete(name))
                await channel.close()
            except Exception:
                pass


async def connect(settings: Settings, *, attempts: int | None = None) -> AbstractRobustConnection:
    """A robust connection, retried with backoff until the broker answers."""
    delay, tries = 0.5, 0
    while True:
        try:
            return await aio_pika.connect_robust(settings.rabbitmq_url, client_properties={"connection_name": "switchboard"})
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            log.warning("broker not reachable, retrying", extra={"error": str(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


class Publisher:
    """Persistent, confirmed publishes; safe to call from many tasks at once.

    Publishes go straight to the aiormq channel under the robust aio-pika channel, with
    prebuilt properties: aio-pika's Message and Exchange layers cost about as much CPU as the
    publish itself. The robust channel re-creates its aiormq channel after a reconnect, so the
    one cached here is fetched again whenever it is closed.
    """

    def __init__(self, connection: AbstractRobustConnection, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._underlay: aiormq.abc.AbstractChannel | None = None
        self._names: dict[str, str] = {}

    async def start(self) -> Publisher:
        self._channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        for name, kind in EXCHANGES.items():
            await self._channel.declare_exchange(self.settings.name(name), kind, durable=True)
            self._names[name] = self.settings.name(name)
        return self

    async def close(self) -> None:
        if self._channel and not self._channel.is_closed:
            await self._channel.close()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        priority: int | None = None,
        timeout: float | None = 30,
    ) -> None:
        """Publish and wait for the broker's confirm; raises when it is nacked or unroutable.

        `timeout` bounds the whole publish, the wait for a reconnecting channel included: the
        inbound edge uses a short one so that a provider is answered 503 quickly instead of
        waiting on a reconnecting connection.

        Every message carries a `message_id` (CONTRACT section 4): when the caller has none (a
        flow engine that published without one, a retry, a dead letter), a new one is made."""
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id or new_uuid(),
            headers=headers,
            priority=priority,
        )
        started = time.perf_counter()
        channel = self._underlay
        if channel is None or channel.is_closed:
            channel = await self._reopened(timeout)
        await channel.basic_publish(
            body,
            exchange=self._names[exchange],
            routing_key=routing_key,
            properties=properties,
            mandatory=exchange not in UNROUTED_OK,
            timeout=timeout,
        )
        PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _reopened(self, timeout: float | None) -> aiormq.abc.AbstractChannel:
        """The robust channel's current aiormq channel (waits for a reconnect, bounded)."""
        if self._channel is None:
            raise aiormq.exceptions.ChannelInvalidStateError("publisher not started")
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("publisher closed")
        self._underlay = await asyncio.wait_for(self._channel.get_underlay_channel(), timeout)
        return self._underlay

    async def publish_status(self, status: StatusUpdate) -> None:
        await self.publish(
            "sms.status", f"status.{status.status}.{status.channel_uuid}", status.to_bytes(), message_id=status_message_id(status)
        )


def status_message_id(status: StatusUpdate) -> str:
    return f"{status.channel_uuid}:{status.id if status.id is not None else status.uuid}:{status.status}:{status.attempt or 0}"


class Delivery:
    """What a handler gets besides its parsed body: the raw message and deferred publishes."""

    __slots__ = ("message", "publisher", "_pending")

    def __init__(self, message: AbstractIncomingMessage, publisher: Publisher):
        self.message = message
        self.publisher = publisher
        self._pending: list[Awaitable[None]] = []

    @property
    def redelivered(self) -> bool:
        return bool(self.message.redelivered)

    def publish(self, exchange: str, routing_key: str, body: bytes, **kwargs) -> None:
        """Start a publish now; the consumer awaits its confirm before acking the delivery."""
        self._pending.append(asyncio.ensure_future(self.publisher.publish(exchange, routing_key, body, **kwargs)))

    def publish_status(self, status: StatusUpdate) -> None:
        self._pending.append(asyncio.ensure_future(self.publisher.publish_status(status)))

    async def settle(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            if len(pending) == 1:
                await pending[0]
            else:
                await asyncio.gather(*pending)


Handler = Callable[[Any, Delivery], Awaitable[None]]


class Requeue(Exception):
    """Raised by a handler that cannot finish for a reason outside the message (an SMPP link
    went down): the delivery goes back to its queue at once, without the error log and pause
    of a failing handler. Its publishes must not have been started."""


def dead_letter_status(body: bytes, reason: str, transport: str | None) -> StatusUpdate | None:
    """A `failed` status for a poison body, when it names a channel and an id."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    channel_uuid, msg_id = data.get("channel_uuid"), data.get("id")
    if not isinstance(channel_uuid, str) or not channel_uuid or msg_id in (None, ""):
        return None
    if not isinstance(msg_id, int | str) or isinstance(msg_id, bool):
        return None
    uuid = data.get("uuid") if isinstance(data.get("uuid"), str) else None
    return StatusUpdate(
        id=msg_id,
        uuid=uuid,
        channel_uuid=channel_uuid,
        status="failed",
        transport=transport,
        error=StatusError(code="invalid_request", message=reason[:500]),
    )


def validation_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "body"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


class AckBatcher:
    """Acks a consumer's deliveries a few milliseconds late, as few frames as possible.

    Handlers finish out of order. Every `delay` seconds the longest run of finished deliveries
    at the front of each channel is acked with one `basic.ack(multiple=True)`; finished ones
    behind an unfinished delivery are acked one by one, so a slow message never holds back
    the acks (and the prefetch window) of the others. Tags are tracked per AMQP channel: after
    a reconnect the old channel's tags are dropped (the broker redelivers those messages).
    """

    def __init__(self, delay: float = 0.005):
        self.delay = delay
        self._open: dict[Any, dict[int, bool]] = {}  # channel -> delivery tag -> finished
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task] = set()

    def received(self, message: AbstractIncomingMessage) -> None:
        channel = _open_channel(message)
        if channel is not None:
            self._open.setdefault(channel, {})[message.delivery_tag] = False

    def forget(self, message: AbstractIncomingMessage) -> None:
        """The delivery is settled some other way (nack)."""
        tags = self._open.get(_open_channel(message))
        if tags is not None:
            tags.pop(message.delivery_tag, None)

    def done(self, message: AbstractIncomingMessage) -> None:
        tags = self._open.get(_open_channel(message))
        if tags is None or message.delivery_tag not in tags:
            return
        tags[message.delivery_tag] = True
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        self._timer = None
        for channel, tags in list(self._open.items()):
            if channel.is_closed:
                del self._open[channel]
                continue
            front = None
            for tag in sorted(tags):  # deliveries may be registered out of order; acks must not be
                if not tags[tag]:
                    break
                front = tag
            if front is not None:
                for tag in [t for t in tags if t <= front]:
                    del tags[tag]
                self._send(channel.basic_ack(front, multiple=True))
            singles = [t for t, finished in tags.items() if finished]
            for tag in singles:
                del tags[tag]
                self._send(channel.basic_ack(tag))

    def _send(self, awaitable) -> None:
        task = asyncio.ensure_future(_safe(awaitable))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Send what is due now and wait for it (before the channel closes)."""
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
        if self._sending:
            await asyncio.wait(self._sending, timeout=2)


def _open_channel(message: AbstractIncomingMessage):
    """The delivery's AMQP channel, or None once it closed (a stop, a lost connection):
    aio-pika raises on `message.channel` then, and there is nothing left to ack or nack,
    since the broker redelivers every delivery of that channel that was not acked."""
    try:
        return message.channel
    except aiormq.exceptions.ChannelInvalidStateError:
        return None


class Consumer:
    """Consume one queue with typed bodies; poison goes to `sms.dead`, the rest to `handler`."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: Publisher,
        settings: Settings,
        queue: str,
        handler: Handler,
        *,
        model: type[BaseModel],
        prefetch: int = 64,
        service: str = "worker",
        transport: str | None = None,
    ):
        assert prefetch > 0, "prefetch must be bounded"
        self.connection = connection
        self.publisher = publisher
        self.settings = settings
        self.queue_name = queue
        self.handler = handler
        self.model = model
        self.prefetch = prefetch
        self.service = service
        self.transport = transport
        self._channel = None
        self._queue = None
        self._tag: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._acks = AckBatcher()
        self._ok = MESSAGES.labels(service, "ok")

    async def start(self) -> None:
        self._channel = await self.connection.channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await self._channel.get_queue(self.settings.name(self.queue_name), ensure=True)
        self._tag = await self._queue.consume(self._on_message)
        log.info("consuming", extra={"queue": self.settings.name(self.queue_name), "prefetch": self.prefetch})

    async def pause(self) -> None:
        """Stop taking new deliveries (what is held stays with us until handled)."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None

    async def resume(self) -> None:
        if self._queue is not None and self._tag is None:
            self._tag = await self._queue.consume(self._on_message)

    @property
    def consuming(self) -> bool:
        return self._tag is not None

    async def stop(self, timeout: float = 8.0) -> None:
        """Cancel the consumer, let in-flight handlers finish, then close (unacked requeue)."""
        try:
            await self.pause()
        except Exception:  # the channel may already be gone
            pass
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        await self._acks.drain()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq already runs each delivery in its own task: handle it there, not in another.
        self._acks.received(message)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._handle(message)
        finally:
            self._tasks.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            body = self.model.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(message, validation_reason(exc))
            return
        delivery = Delivery(message, self.publisher)
        try:
            await self.handler(body, delivery)
            await delivery.settle()
        except asyncio.CancelledError:
            self._acks.forget(message)
            await _safe(message.nack(requeue=True))
            raise
        except Requeue as exc:
            MESSAGES.labels(self.service, "requeued").inc()
            log.info("message requeued", extra={"queue": self.queue_name, "reason": str(exc)})
            self._acks.forget(message)
            await _safe(message.nack(requeue=True))
            return
        except Exception as exc:
            MESSAGES.labels(self.service, "error").inc()
            log.exception("handler failed; message requeued", extra={"queue": self.queue_name, "error": str(exc)})
            await asyncio.sleep(0.5)  # no hot loop; x-delivery-limit parks a message that keeps failing
            self._acks.forget(message)
            await _safe(message.nack(requeue=True))
            return
        self._ok.inc()
        self._acks.done(message)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Park a poison body in `sms.dead` with its reason, tell the sender, ack it."""
        MESSAGES.labels(self.service, "dead").inc()
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-error": reason[:1000],
                "x-original-exchange": message.exchange or "",
                "x-original-routing-key": message.routing_key or "",
                "x-queue": self.settings.name(self.queue_name),
                "x-service": self.service,
            }
        )
        log.warning("poison message dead-lettered", extra={"queue": self.queue_name, "reason": reason[:300]})
        try:
            jobs = [
                self.publisher.publish(
                    "sms.dead", message.routing_key or "unknown", message.body, headers=headers, message_id=message.message_id
                )
            ]
            status = dead_letter_status(message.body, reason, self.transport)
            if status is not None:
                jobs.append(self.publisher.publish_status(status))
            await asyncio.gather(*jobs)
        except Exception:
            log.exception("could not dead-letter; requeued")
            await asyncio.sleep(0.5)
            self._acks.forget(message)
            await _safe(message.nack(requeue=True))
            return
        self._acks.done(message)


async def _safe(awaitable) -> None:
    try:
        await awaitable
    except Exception:
        pass
