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

from .amqp_socket import BatchingTransportFactory
from .channels import AGGREGATORS
from .metrics import MESSAGES, PUBLISH_SECONDS
from .models import StatusError, StatusUpdate, new_uuid
from .outage import OutageGate, is_dependency_error
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
    "sms.health": "topic",
}
# Nobody is required to listen to channel logs; every other exchange has a default queue,
# so an unroutable publish there is a bug we want to hear about (mandatory + returns raise).
UNROUTED_OK = {"sms.logs", "sms.health"}
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
# `dead.letters` is read by `switchboard dead list`, which takes and hands back (each hand-back
# counts as a delivery). RabbitMQ 4.x gives quorum queues a delivery limit of 20 by default
# and dead.letters has nowhere to dead-letter to, so its limit is set explicitly, high enough
# never to be reached (3.x has no default; both accept this value).
DEAD_LETTERS_DELIVERY_LIMIT = 1_000_000
# Quorum queues replicate across this many nodes where the cluster has them (fewer: all).
QUORUM_GROUP_SIZE = 3
# Queues whose bodies are SendRequests: a dead letter from one of them gets a `failed` status.
SEND_QUEUES = ("outbound.router", "transport.")


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
        # A copy of every dead letter for the router, which publishes the `failed` status of
        # those the broker parked itself (delivery limit); dead.letters stays for inspection.
        "dead.statuses": ("sms.dead", ["#"]),
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
    args: dict[str, Any] = {"x-queue-type": "quorum", "x-quorum-initial-group-size": QUORUM_GROUP_SIZE}
    if name == "dead.letters":
        args["x-delivery-limit"] = DEAD_LETTERS_DELIVERY_LIMIT
    elif name == "dead.statuses":
        # No dead-lettering from here (it would come straight back): a copy that keeps failing is dropped.
        args["x-delivery-limit"] = DELIVERY_LIMIT
    elif name.startswith("retry."):
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
    else:
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


# Seconds between reconnection attempts (aio-pika's default is 5): with a cluster the next
# attempt goes to the next node, so a worker is back within about a second of a node's death.
RECONNECT_INTERVAL_S = 1.0


class FailoverConnection(aio_pika.RobustConnection):
    """A robust connection to one node of a cluster at a time: every connection attempt,
    the first and each reconnection, takes the next of `urls` in turn.

    aio-pika reconnects a robust connection to its one URL and restores its channels, QoS and
    consumers there. Each attempt starts by clearing `transport` (RobustConnection's
    reconnection loop), which is where the next URL is chosen, so all the restoring stays
    aio-pika's. With one URL this is a plain RobustConnection.
    """

    def __init__(self, urls: list[str], start: int = 0, **kwargs: Any):
        self._urls = [aio_pika.connection.URL(url) for url in urls]
        self._attempt = start
        self._ready = False
        super().__init__(self._urls[start % len(self._urls)], **kwargs)
        self._ready = True

    @property
    def transport(self):
        return self.__dict__.get("_transport")

    @transport.setter
    def transport(self, value) -> None:
        if value is None and self._ready:  # a connection attempt begins: the next node
            self.url = self._urls[self._attempt % len(self._urls)]
            self._attempt += 1
        self.__dict__["_transport"] = value


async def open_connection(urls: list[str], *, start: int = 0, timeout: float | None = 10) -> AbstractRobustConnection:
    connection = FailoverConnection(
        urls, start, client_properties={"connection_name": "switchboard"}, reconnect_interval=RECONNECT_INTERVAL_S
    )
    if all(url.startswith("amqp://") for url in urls):  # one socket write per loop turn (amqp_socket.py)
        connection.kwargs["transport_factory"] = BatchingTransportFactory()
    await connection.connect(timeout=timeout)
    return connection


async def connect(settings: Settings, *, attempts: int | None = None) -> AbstractRobustConnection:
    """A robust connection, retried with backoff until a node of RABBITMQ_URL answers."""
    delay, tries = 0.5, 0
    while True:
        try:
            return await open_connection(settings.rabbitmq_urls, start=tries)
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
        self._closed = False

    async def start(self) -> Publisher:
        self._channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        for name, kind in EXCHANGES.items():
            await self._channel.declare_exchange(self.settings.name(name), kind, durable=True)
            self._names[name] = self.settings.name(name)
        return self

    async def close(self) -> None:
        self._closed = True
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
        deadline = None if timeout is None else started + timeout
        while True:
            channel = self._underlay
            try:
                if channel is None or channel.is_closed:
                    channel = await self._reopened(_left(deadline))
                await channel.basic_publish(
                    body,
                    exchange=self._names[exchange],
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=exchange not in UNROUTED_OK,
                    timeout=_left(deadline),
                    # The confirm is what we wait for; waiting for the socket drain as well would
                    # hold the channel's lock for a loop turn per publish, one socket write each.
                    # aiormq's bounded write queue still pushes back when the socket cannot keep up.
                    wait=False,
                )
                break
            except (*_LINK_LOST, aiormq.exceptions.DeliveryError) as exc:
                # The node went away before it confirmed (a cluster node died, the broker
                # restarted), or the broker nacked it (a quorum queue electing a new leader):
                # publish again while time is left, instead of failing the delivery and
                # spending one of its attempts. At least once: the broker may hold a copy.
                nacked = isinstance(exc, aiormq.exceptions.DeliveryError)
                if nacked and not isinstance(exc.frame, aiormq.spec.Basic.Nack):
                    raise  # returned unroutable: a bug to hear about, not an outage
                if self._closed or (deadline is not None and time.perf_counter() >= deadline):
                    raise
                if not nacked:
                    self._underlay = None
                await asyncio.sleep(0.25 if nacked else 0.05)
        PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _reopened(self, timeout: float | None) -> aiormq.abc.AbstractChannel:
        """The robust channel's current aiormq channel (waits for a reconnect, bounded)."""
        if self._channel is None:
            raise aiormq.exceptions.ChannelInvalidStateError("publisher not started")
        if self._closed:
            raise aiormq.exceptions.ChannelInvalidStateError("publisher closed")
        self._underlay = await asyncio.wait_for(self._channel.get_underlay_channel(), timeout)
        return self._underlay

    async def publish_status(self, status: StatusUpdate) -> None:
        await self.publish(
            "sms.status", f"status.{status.status}.{status.channel_uuid}", status.to_bytes(), message_id=status_message_id(status)
        )


# A publish that met these did not reach a broker that confirmed it: worth another try.
_LINK_LOST = (aiormq.exceptions.ChannelInvalidStateError, aiormq.exceptions.AMQPConnectionError, ConnectionError)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.001, deadline - time.perf_counter())


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


def dead_letter_notice(body: bytes, headers: dict[str, Any] | None, settings: Settings) -> StatusUpdate | None:
    """The `failed` status of a dead letter the broker parked itself (a delivery limit), or
    None: a Consumer's own dead letter carries `x-error` and its status was published then;
    only SendRequests (from `outbound.router` and `transport.*`) get a status."""
    headers = headers or {}
    if "x-error" in headers:
        return None
    reason = _header_text(headers.get("x-first-death-reason"))
    queue = _header_text(headers.get("x-first-death-queue"))
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = reason or _header_text(deaths[0].get("reason"))
        queue = queue or _header_text(deaths[0].get("queue"))
    if not reason or not queue.startswith(settings.prefix):
        return None
    base = queue[len(settings.prefix):]
    if not base.startswith(SEND_QUEUES):
        return None
    if reason == "delivery_limit":
        why = f"dead-lettered by the broker from {base}: delivery limit reached ({DELIVERY_LIMIT} deliveries without an ack)"
    else:
        why = f"dead-lettered by the broker from {base} ({reason})"
    status = dead_letter_status(body, why, base.split(".", 1)[1] if base.startswith("transport.") else None)
    if status is None:
        return None
    status.error = StatusError(code="dead_lettered", message=why)
    try:
        attempt = orjson.loads(body).get("attempt")
    except (orjson.JSONDecodeError, AttributeError):
        attempt = None
    status.attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None
    return status


def _header_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def validation_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "body"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


def _channel_of(message: AbstractIncomingMessage):
    """The delivery's channel, or None once it is gone (its tags are dropped with it)."""
    try:
        return message.channel
    except aiormq.exceptions.ChannelInvalidStateError:
        return None


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
        channel = _channel_of(message)
        if channel is not None:  # a closed channel's deliveries come back from the broker
            self._open.setdefault(channel, {})[message.delivery_tag] = False

    def forget(self, message: AbstractIncomingMessage) -> None:
        """The delivery is settled some other way (nack)."""
        tags = self._open.get(_channel_of(message))
        if tags is not None:
            tags.pop(message.delivery_tag, None)

    def done(self, message: AbstractIncomingMessage) -> None:
        tags = self._open.get(_channel_of(message))
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


class Consumer:
    """Consume one queue with typed bodies; poison goes to `sms.dead`, the rest to `handler`.

    With a `gate` (services/core/outage.py), a handler that raises DependencyUnavailable or a
    Redis connection error is not requeued: the delivery is held, every consumer on the gate
    stops consuming, and the handler runs again once the dependency answers. `model=None`
    hands the handler the raw body bytes (nothing is ever dead-lettered then)."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: Publisher,
        settings: Settings,
        queue: str,
        handler: Handler,
        *,
        model: type[BaseModel] | None,
        prefetch: int = 64,
        service: str = "worker",
        transport: str | None = None,
        gate: OutageGate | None = None,
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
        self.gate = gate
        self._paused = False  # by its owner (pause/resume)
        self._held = False  # by the gate, during a dependency outage
        self._closing = asyncio.Event()
        if gate is not None:
            gate.register(self)

    async def start(self) -> None:
        self._channel = await self.connection.channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await self._channel.get_queue(self.settings.name(self.queue_name), ensure=True)
        self._tag = await self._queue.consume(self._on_message)
        log.info("consuming", extra={"queue": self.settings.name(self.queue_name), "prefetch": self.prefetch})

    async def pause(self) -> None:
        """Stop taking new deliveries (what is held stays with us until handled)."""
        self._paused = True
        await self._cancel()

    async def resume(self) -> None:
        self._paused = False
        if not self._held:
            await self._consume()

    async def hold(self) -> None:
        """The gate's pause: a dependency is down."""
        self._held = True
        await self._cancel()

    async def unhold(self) -> None:
        """The dependency is back: consume again (unless the owner paused us), retrying while
        the broker connection recovers."""
        self._held = False
        while not (self._paused or self._held or self._closing.is_set()):
            try:
                await self._consume()
                return
            except Exception as exc:
                log.warning("could not consume again; retrying", extra={"queue": self.queue_name, "error": str(exc)})
                await asyncio.sleep(1)

    async def _cancel(self) -> None:
        if self._queue is not None and self._tag is not None:
            tag, self._tag = self._tag, None
            await self._queue.cancel(tag)

    async def _consume(self) -> None:
        if self._queue is not None and self._tag is None:
            self._tag = await self._queue.consume(self._on_message)

    @property
    def consuming(self) -> bool:
        return self._tag is not None

    @property
    def in_flight(self) -> int:
        """Deliveries being handled right now (reported in heartbeats)."""
        return len(self._tasks)

    async def stop(self, timeout: float = 8.0) -> None:
        """Cancel the consumer, let in-flight handlers finish, then close (unacked requeue)."""
        self._closing.set()  # handlers held by an outage give their deliveries back
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
            body = message.body if self.model is None else self.model.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(message, validation_reason(exc))
            return
        delivery = Delivery(message, self.publisher)
        try:
            while True:
                try:
                    await self.handler(body, delivery)
                    await delivery.settle()
                    break
                except Exception as exc:
                    if self.gate is None or not is_dependency_error(exc):
                        raise
                    if not await self._held_through_outage(exc):
                        raise Requeue(f"stopping during an outage: {exc}") from None
                    delivery = Delivery(message, self.publisher)
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

    async def _held_through_outage(self, exc: Exception) -> bool:
        """Hold the delivery until the gate is up again (True: run the handler again) or the
        consumer stops (False)."""
        MESSAGES.labels(self.service, "held").inc()
        self.gate.down(exc)
        up = asyncio.ensure_future(self.gate.wait_up())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((up, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            closing.cancel()
        return self.gate.up and not self._closing.is_set()

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
