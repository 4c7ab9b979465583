"""Issue 13, item 1, against the real broker and a redis-server of the test's own.

- A handler that meets a Redis outage is held, not requeued: on a queue whose delivery limit
  is 1 (one requeue parks a message), every message is still handled once Redis is back, and
  the worker resumes within a second of it.
- A SendRequest that the broker itself dead-letters (its delivery limit) gets a `failed`
  status, code `dead_lettered`, from the router.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
import yaml
from aio_pika import Message

from services.core.broker import queue_arguments
from services.core.channels import parse_channels
from services.core.models import SendRequest, StatusUpdate
from services.core.service import Runtime
from services.outbound import router
from tests.chaos.kit import RedisServer
from tests.helpers import Tap

CHANNEL = str(uuid.uuid4())
CHANNELS = {"channels": [{"uuid": CHANNEL, "type": "external", "config": {"send_url": "http://127.0.0.1:9/send"}}]}


def test_what_counts_as_an_outage():
    import redis.exceptions

    from services.core.outage import DependencyUnavailable, is_dependency_error

    assert is_dependency_error(DependencyUnavailable("redis"))
    assert is_dependency_error(redis.exceptions.ConnectionError("refused"))
    assert is_dependency_error(redis.exceptions.TimeoutError("slow"))
    assert is_dependency_error(redis.exceptions.BusyLoadingError("loading"))
    assert not is_dependency_error(redis.exceptions.ResponseError("WRONGTYPE"))  # a bug, not an outage
    assert not is_dependency_error(ValueError("poison"))


@pytest.fixture
async def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


async def test_a_redis_outage_holds_deliveries_without_spending_attempts(settings, redis_server, amqp):
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    runtime = Runtime("held", settings, parse_channels(yaml.safe_dump(CHANNELS)))
    await runtime.connect()
    queue_name = f"outage.{uuid.uuid4().hex[:6]}"
    channel = await amqp.channel()
    # One requeue is enough for the broker to park a message in dead.letters.
    arguments = {**queue_arguments(settings, queue_name), "x-delivery-limit": 1}
    await channel.declare_queue(settings.name(queue_name), durable=True, arguments=arguments)
    handled: dict[int, float] = {}

    async def handler(request: SendRequest, delivery) -> None:
        await runtime.redis.get(runtime.key(f"sent:{request.channel_uuid}:{request.id}"))  # as the sender does
        handled.setdefault(request.id, time.monotonic())

    dead = await Tap.open(amqp, settings, "sms.dead", settings.name(queue_name))
    try:
        redis_server.kill()
        consumer = await runtime.consume(queue_name, handler, model=SendRequest, prefetch=10)
        for i in range(5):
            body = SendRequest(id=i, channel_uuid=CHANNEL, to="+250788123123", text="held").to_bytes()
            await channel.default_exchange.publish(Message(body, delivery_mode=2), routing_key=settings.name(queue_name))
        await asyncio.sleep(6)  # several failed attempts' worth of outage (each takes redis-py's retries)
        held_while_down, consuming_while_down = handled == {}, consumer.consuming
        back = time.monotonic()
        redis_server.start()
        deadline = time.monotonic() + 15
        while len(handled) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert sorted(handled) == [0, 1, 2, 3, 4], f"handled {sorted(handled)}, dead-lettered {len(dead.messages)}"
        assert dead.messages == []
        assert held_while_down and not consuming_while_down  # it stopped taking new messages
        resume = min(handled.values()) - back
        assert resume < 1.5, f"resumed {resume:.2f} s after Redis answered"
        assert consumer.consuming
    finally:
        await dead.close()
        await runtime.close()
        await channel.queue_delete(settings.name(queue_name))
        await channel.close()


async def test_a_send_the_broker_dead_letters_gets_a_failed_status(settings, amqp):
    """Delivery limit reached on transport.external (20 requeues): the router reports it."""
    runtime = Runtime("router", settings, parse_channels(yaml.safe_dump(CHANNELS)))
    await runtime.connect()
    await router.setup(runtime)
    statuses = await Tap.open(amqp, settings, "sms.status", f"status.failed.{CHANNEL}")
    channel = await amqp.channel()
    crashy = f"transport.crashy{uuid.uuid4().hex[:6]}"  # a send queue, as the router sees it
    queue = await channel.declare_queue(settings.name(crashy), durable=True, arguments=queue_arguments(settings, crashy))
    try:
        request = SendRequest(id=4242, channel_uuid=CHANNEL, to="+250788123123", text="crashes its worker", attempt=2)
        await channel.default_exchange.publish(Message(request.to_bytes(), delivery_mode=2), routing_key=settings.name(crashy))
        parked = False
        for _ in range(400):  # a worker that crashes on it until the broker parks it
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                parked = True
                break
            await message.nack(requeue=True)
        assert parked
        [got] = await statuses.wait(1, timeout=10)  # schema-checked by the tap
        status = StatusUpdate.model_validate(got.body)
        assert (status.id, status.status, status.error.code, status.attempt) == (4242, "failed", "dead_lettered", 2)
        assert "delivery" in status.error.message and crashy in status.error.message
        assert status.transport == crashy.split(".", 1)[1]
        await asyncio.sleep(0.5)
        assert len(statuses.messages) == 1
    finally:
        await statuses.close()
        await runtime.close()
        await channel.queue_delete(settings.name(crashy))
        await channel.close()


async def test_a_consumers_own_dead_letter_is_not_reported_twice(settings, amqp):
    """A poison body is dead-lettered by the Consumer with `x-error` (and its status then)."""
    from services.core.broker import dead_letter_notice

    body = orjson.dumps({"id": 1, "channel_uuid": CHANNEL, "to": "+1"})
    assert dead_letter_notice(body, {"x-error": "text: required"}, settings) is None
    death = {"x-first-death-reason": "delivery_limit", "x-first-death-queue": settings.name("inbound.messages")}
    assert dead_letter_notice(body, death, settings) is None  # not a send
    death["x-first-death-queue"] = settings.name("outbound.router")
    status = dead_letter_notice(body, death, settings)
    assert status is not None and status.transport is None and status.error.code == "dead_lettered"
    assert dead_letter_notice(b"not json", death, settings) is None
