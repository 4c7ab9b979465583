"""The broker wiring against the real RabbitMQ: topology, confirms, poison, prefixes, retries."""

from __future__ import annotations

import asyncio

import aio_pika
import orjson

from services.core.broker import (
    Consumer,
    Publisher,
    connect,
    declare_topology,
    delete_topology,
    queue_bindings,
)
from services.core.models import SendRequest
from services.core.retry import retry_delay_ms, schedule_retry
from services.core.settings import Settings
from tests.helpers import Tap, assert_valid

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"


def send_body(i: int = 1, **extra) -> bytes:
    return orjson.dumps({"id": i, "channel_uuid": CH, "to": "+250788123123", "text": f"hello {i}", **extra})


async def test_topology_is_idempotent(amqp, settings):
    first = await declare_topology(amqp, settings, ["smsc-a"])
    second = await declare_topology(amqp, settings, ["smsc-a"])
    assert first == second
    assert settings.name("transport.smpp.smsc-a") in first
    assert set(first) >= {settings.name(n) for n in queue_bindings(settings)}
    channel = await amqp.channel()
    queue = await channel.declare_queue(settings.name("outbound.router"), passive=True)
    assert queue.name.startswith(settings.prefix)
    await channel.close()


async def test_publish_consume_round_trip_with_confirms(amqp, publisher, settings):
    got: list[SendRequest] = []
    done = asyncio.Event()

    async def handler(request: SendRequest, delivery):
        got.append(request)
        delivery.publish("sms.transport", "rest.generic", request.to_bytes())
        if len(got) == 50:
            done.set()

    consumer = Consumer(amqp, publisher, settings, "outbound.router", handler, model=SendRequest, prefetch=20)
    await consumer.start()
    tap = await Tap.open(amqp, settings, "sms.transport", "rest.generic")
    await asyncio.gather(*(publisher.publish("sms.outbound", f"send.{CH}", send_body(i)) for i in range(50)))
    await asyncio.wait_for(done.wait(), 10)
    relayed = await tap.wait(50)
    assert sorted(r.body["id"] for r in relayed) == list(range(50))
    await consumer.stop()
    # Everything was acked: nothing is left in the queue.
    channel = await amqp.channel()
    queue = await channel.declare_queue(settings.name("outbound.router"), passive=True)
    assert queue.declaration_result.message_count == 0
    await channel.close()
    await tap.close()


async def test_poison_message_is_dead_lettered_and_consumer_goes_on(amqp, publisher, settings):
    handled = []

    async def handler(request, delivery):
        handled.append(request.id)

    dead = await Tap.open(amqp, settings, "sms.dead")
    status = await Tap.open(amqp, settings, "sms.status", "status.failed.#")
    consumer = Consumer(amqp, publisher, settings, "transport.rest.kannel", handler, model=SendRequest, prefetch=5, transport="rest.kannel")
    await consumer.start()
    await publisher.publish("sms.transport", "rest.kannel", b"{not json")
    await publisher.publish("sms.transport", "rest.kannel", orjson.dumps({"id": 99, "channel_uuid": CH, "to": "not a number", "text": "x"}))
    await publisher.publish("sms.transport", "rest.kannel", send_body(100))
    dead_letters = await dead.wait(2)
    reasons = sorted(m.headers["x-error"] for m in dead_letters)
    assert any("Invalid JSON" in r or "json" in r.lower() for r in reasons), reasons
    assert any(r.startswith("to:") and "not a phone number" in r or "not a number" in r for r in reasons), reasons
    assert all(m.headers["x-queue"] == settings.name("transport.rest.kannel") for m in dead_letters)
    failed = await status.wait(1)
    assert failed[0].body["id"] == 99 and failed[0].body["error"]["code"] == "invalid_request"
    for _ in range(50):
        if handled:
            break
        await asyncio.sleep(0.1)
    assert handled == [100]
    # The poison is parked in dead.letters (the queue), for `switchboard dead list`.
    channel = await amqp.channel()
    queue = await channel.declare_queue(settings.name("dead.letters"), passive=True)
    assert queue.declaration_result.message_count >= 2
    await channel.close()
    await consumer.stop()
    await dead.close()
    await status.close()


async def test_prefixes_isolate_runs(amqp, settings):
    other = Settings(SWITCHBOARD_PREFIX=settings.prefix + "other.")
    await declare_topology(amqp, other)
    mine = await Tap.open(amqp, settings, "sms.status")
    theirs = await Tap.open(amqp, other, "sms.status")
    pub_other = await Publisher(amqp, other).start()
    body = orjson.dumps({"id": 1, "uuid": None, "channel_uuid": CH, "status": "sent", "external_id": None,
                         "transport": "external", "attempt": 1, "error": None, "timestamp": "2026-01-01T00:00:00.000Z"})
    await pub_other.publish("sms.status", f"status.sent.{CH}", body)
    await theirs.wait(1)
    await asyncio.sleep(0.3)
    assert mine.messages == []
    await pub_other.close()
    await delete_topology(amqp, other)
    await mine.close()
    await theirs.close()


async def test_retry_queue_returns_the_message_to_its_transport(amqp, settings):
    """errored -> retry.<ms> -> back on sms.transport under the key carried in CC."""
    fast = Settings(SWITCHBOARD_RETRY_DELAYS_MS="200,400")
    await declare_topology(amqp, fast)
    assert retry_delay_ms(fast, 1) == 200 and retry_delay_ms(fast, 2) == 400 and retry_delay_ms(fast, 3) is None
    pub = await Publisher(amqp, fast).start()
    # A transport key of this test's own, so no other test's leftovers can interfere.
    channel = await amqp.channel()
    own = await channel.declare_queue(fast.name("transport.retry-test"), durable=True, arguments={"x-queue-type": "quorum"})
    await own.bind(fast.name("sms.transport"), routing_key="rest.retry-test")
    back = await Tap.open(amqp, fast, "sms.transport", "rest.retry-back")

    async def handler(request, delivery):
        if request.attempt == 0:
            schedule_retry(delivery, "rest.retry-back", 1, 200)

    consumer = Consumer(amqp, pub, fast, "transport.retry-test", handler, model=SendRequest, prefetch=1)
    await consumer.start()
    await pub.publish("sms.transport", "rest.retry-test", send_body(5, flow="keep-me"))
    retried = await back.wait(1, timeout=10)
    assert retried[0].body["attempt"] == 1 and retried[0].body["flow"] == "keep-me"
    assert_valid(retried[0].body, "send_request")
    await consumer.stop()
    await channel.queue_delete(fast.name("transport.retry-test"))
    await channel.close()
    await pub.close()
    await back.close()


async def test_connect_gives_up_when_told(settings):
    bad = Settings(RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/")
    try:
        await connect(bad, attempts=1)
    except Exception as exc:
        assert isinstance(exc, OSError | aio_pika.exceptions.AMQPError | ConnectionError)
    else:
        raise AssertionError("connected to a closed port")


async def test_delete_topology_removes_a_prefix(amqp, settings):
    scratch = Settings(SWITCHBOARD_PREFIX=settings.prefix + "scratch.")
    await declare_topology(amqp, scratch)
    await delete_topology(amqp, scratch)
    for name in (scratch.name("outbound.router"), scratch.name("retry.5000")):
        channel = await amqp.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            pass
        else:
            raise AssertionError(f"{name} survived delete_topology")


async def test_every_published_message_has_a_message_id(amqp, publisher, settings):
    """A body relayed without one (e.g. from a flow engine that set none) still gets one."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(settings.name("sms.transport"), "rest.africastalking")
    await publisher.publish("sms.transport", "rest.africastalking", send_body(12), message_id="given-12")
    await publisher.publish("sms.transport", "rest.africastalking", send_body(13))
    ids = []
    for _ in range(50):
        message = await queue.get(fail=False)
        if message is not None:
            ids.append(message.message_id)
            await message.ack()
        if len(ids) == 2:
            break
        await asyncio.sleep(0.05)
    assert ids[0] == "given-12"
    assert ids[1] and len(ids[1]) == 36
    await channel.close()
