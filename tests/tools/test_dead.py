"""`switchboard dead list|replay` against real dead letters from both dead-lettering paths.

- A consumer that rejects a poison body (services.core.broker.Consumer) writes `x-error` and
  the original exchange and routing key.
- The broker parks a message that reached its queue's `x-delivery-limit` with `x-death`.
"""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from services.core.broker import Consumer, queue_arguments
from services.core.models import SendRequest
from services.core.settings import Settings
from tests.helpers import Tap
from tests.tools.procs import json_lines, run_cli


async def dead_letters(**match) -> list[dict]:
    code, out, err = await run_cli("dead", "list", "--json", "--limit", "10000")
    assert code == 0, err
    return [d for d in json_lines(out) if all(d.get(k) == v for k, v in match.items())]


async def parked(**match) -> bool:
    """In-process look (same code as the CLI, without a process start) for polling loops."""
    from services.tools.dead import list_dead

    return any(all(d.as_dict().get(k) == v for k, v in match.items()) for d in await list_dead(Settings(), 10000))


async def ready_in_dead_letters(amqp, settings) -> int:
    channel = await amqp.channel()
    queue = await channel.declare_queue(settings.name("dead.letters"), passive=True)
    await channel.close()
    return queue.declaration_result.message_count


@pytest.fixture
async def scratch_queue(amqp, settings):
    """A quorum queue of our own, bound to sms.outbound for one channel, dead-lettering like the real ones."""
    channel_uuid = str(uuid.uuid4())
    name = f"tools.scratch.{uuid.uuid4().hex[:6]}"
    channel = await amqp.channel()
    queue = await channel.declare_queue(settings.name(name), durable=True, arguments=queue_arguments(settings, name))
    await queue.bind(settings.name("sms.outbound"), routing_key=f"send.{channel_uuid}")
    yield name, channel_uuid
    await queue.delete(if_unused=False, if_empty=False)
    router = await channel.get_queue(settings.name("outbound.router"), ensure=False)
    await router.purge()  # no router runs here: do not leave our copies to a later test's router
    await channel.close()


async def test_list_shows_a_poison_message_with_its_reason_and_leaves_it_there(amqp, publisher, settings, scratch_queue):
    queue_name, channel_uuid = scratch_queue
    handled = []

    async def handler(body, delivery):
        handled.append(body)

    consumer = Consumer(amqp, publisher, settings, queue_name, handler, model=SendRequest, service="scratch")
    await consumer.start()
    message_id = f"poison-{uuid.uuid4().hex[:8]}"
    poison = {"id": 4242, "channel_uuid": channel_uuid, "to": "call me maybe", "text": "hi"}
    try:
        await publisher.publish("sms.outbound", f"send.{channel_uuid}", orjson.dumps(poison), message_id=message_id)
        for _ in range(100):
            if await parked(message_id=message_id):
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    assert handled == []

    [letter] = await dead_letters(message_id=message_id)
    assert letter["id"] == 4242 and letter["channel_uuid"] == channel_uuid
    assert "to" in letter["reason"] and "not a number or URN" in letter["reason"]
    assert letter["exchange"] == settings.name("sms.outbound")
    assert letter["routing_key"] == f"send.{channel_uuid}"
    assert letter["queue"] == settings.name(queue_name) and letter["service"] == "scratch"
    assert orjson.loads(letter["body"]) == poison

    # Looking twice changes nothing: the message is still there, once.
    before = await ready_in_dead_letters(amqp, settings)
    assert len(await dead_letters(message_id=message_id)) == 1
    code, out, _ = await run_cli("dead", "list", "--limit", "10000")
    assert code == 0 and message_id in out and "reason: " in out
    for _ in range(50):  # the requeue of the last look is asynchronous
        if await ready_in_dead_letters(amqp, settings) == before:
            break
        await asyncio.sleep(0.1)
    assert await ready_in_dead_letters(amqp, settings) == before


async def test_replay_sends_a_message_back_to_its_origin_and_removes_it(amqp, publisher, settings, scratch_queue):
    """A valid request that crashed its worker until the delivery limit parked it is replayed once fixed."""
    _, channel_uuid = scratch_queue
    crashy = f"tools.crashy.{uuid.uuid4().hex[:6]}"
    channel = await amqp.channel()
    arguments = {**queue_arguments(settings, crashy), "x-delivery-limit": 1}
    queue = await channel.declare_queue(settings.name(crashy), durable=True, arguments=arguments)
    await queue.bind(settings.name("sms.outbound"), routing_key=f"send.{channel_uuid}")
    tap = None
    try:
        request = SendRequest(id=5151, channel_uuid=channel_uuid, to="+250788123123", text="back again")
        message_id = f"crashy-{uuid.uuid4().hex[:8]}"
        await publisher.publish("sms.outbound", f"send.{channel_uuid}", request.to_bytes(), message_id=message_id)
        for _ in range(100):  # the "worker" crashes on it until the broker parks it in dead.letters
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                await message.nack(requeue=True)
            elif await parked(message_id=message_id):
                break
            else:
                await asyncio.sleep(0.05)
        [letter] = await dead_letters(message_id=message_id)
        assert "delivery_limit" in letter["reason"] and settings.name(crashy) in letter["reason"]
        assert letter["exchange"] == settings.name("sms.outbound")
        assert letter["routing_key"] == f"send.{channel_uuid}"
        await queue.unbind(settings.name("sms.outbound"), routing_key=f"send.{channel_uuid}")

        tap = await Tap.open(amqp, settings, "sms.outbound", f"send.{channel_uuid}")
        code, out, err = await run_cli("dead", "replay", "--id", message_id)
        assert code == 0, err
        assert f"replayed {message_id} id=5151 to {settings.name('sms.outbound')} send.{channel_uuid}" in out

        [replayed] = await tap.wait(1, timeout=10)  # schema-checked by the tap
        assert replayed.body == orjson.loads(request.to_bytes())
        assert not {"x-death", "x-error", "x-first-death-reason"} & set(replayed.headers)
        assert await dead_letters(message_id=message_id) == []
    finally:
        if tap is not None:
            await tap.close()
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_replay_by_body_id_of_a_still_invalid_message_comes_back(amqp, publisher, settings, scratch_queue):
    """As the help says: replaying a body that is still poison just parks it again, with its reason."""
    queue_name, channel_uuid = scratch_queue

    async def handler(body, delivery):
        raise AssertionError("a poison body must never reach the handler")

    consumer = Consumer(amqp, publisher, settings, queue_name, handler, model=SendRequest, service="scratch")
    await consumer.start()
    body_id = f"still-bad-{uuid.uuid4().hex[:6]}"
    try:
        await publisher.publish("sms.outbound", f"send.{channel_uuid}", orjson.dumps({"id": body_id, "channel_uuid": channel_uuid}))
        for _ in range(100):
            if await parked(id=body_id):
                break
            await asyncio.sleep(0.1)
        assert len(await dead_letters(id=body_id)) == 1
        code, out, _ = await run_cli("dead", "replay", "--id", body_id)
        assert code == 0 and "replayed" in out
        for _ in range(100):
            if await parked(id=body_id):
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    [letter] = await dead_letters(id=body_id)
    assert "to" in letter["reason"] and "text" in letter["reason"]


async def test_replay_needs_an_id_or_all():
    code, _, err = await run_cli("dead", "replay")
    assert code == 2
    assert "--id MESSAGE_ID" in err and "--all" in err


async def test_replay_of_an_unknown_id_says_so_and_exits_1():
    code, _, err = await run_cli("dead", "replay", "--id", f"nope-{uuid.uuid4().hex}")
    assert code == 1
    assert "no dead letter with id nope-" in err


def test_dead_letters_delivery_limit_is_explicit_and_out_of_reach():
    """Listing redelivers; it must never be able to drop what it looks at. RabbitMQ 4.x gives
    quorum queues a delivery limit of 20 by default, so the limit is set explicitly."""
    assert queue_arguments(Settings(), "dead.letters")["x-delivery-limit"] >= 1_000_000
    assert "x-dead-letter-exchange" not in queue_arguments(Settings(), "dead.letters")


async def test_listing_dead_letters_25_times_keeps_them(amqp, settings, publisher):
    """More hand-backs than RabbitMQ 4.x's default limit of 20: the letter is still there."""
    message_id = f"listed-{uuid.uuid4().hex[:8]}"
    await publisher.publish("sms.dead", "send.listed", b'{"id": 1}', message_id=message_id)
    for _ in range(25):
        assert await parked(message_id=message_id)
    channel = await amqp.channel()
    queue = await channel.get_queue(settings.name("dead.letters"), ensure=False)
    while (message := await queue.get(no_ack=False, fail=False)) is not None:  # tidy up: take ours out
        await (message.ack() if message.message_id == message_id else message.nack(requeue=True))
        if message.message_id == message_id:
            break
    await channel.close()
