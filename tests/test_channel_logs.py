"""The shared ChannelLogPublisher against the real broker: batches, big bodies, a full buffer,
an outage (logs dropped and counted, then published again after the reconnect), close."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import aio_pika

from services.core.broker import connect, declare_topology
from services.core.channel_logs import LOGS_DROPPED, ChannelLogPublisher
from services.core.models import ChannelLog
from services.core.settings import Settings
from tests.helpers import Tap
from tests.inbound.proxy import TcpProxy

CH = "5d8f0b1e-7c0e-4c55-9b0e-0c1d2e3f4a01"


def entry(text: str, channel_uuid: str = CH) -> ChannelLog:
    return ChannelLog(channel_uuid=channel_uuid, type="msg_receive", msg_id=text, errors=[text])


async def eventually(predicate, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_logs_added_in_one_loop_turn_all_arrive_with_their_properties(amqp, settings):
    tap = await Tap.open(amqp, settings, "sms.logs", f"log.{CH}")
    props: list[aio_pika.abc.AbstractIncomingMessage] = []
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(settings.name("sms.logs"), routing_key=f"log.{CH}")

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        props.append(message)

    await queue.consume(keep, no_ack=True)
    logs = await ChannelLogPublisher(amqp, settings, "test").start()
    try:
        entries = [entry(f"batch-{i}") for i in range(300)]
        for item in entries:
            logs.add(item)
        received = await tap.wait(300, where=lambda m: m.body["msg_id"].startswith("batch-"))
        assert sorted(m.body["msg_id"] for m in received) == sorted(e.msg_id for e in entries)
        assert all(m.routing_key == f"log.{CH}" for m in received)
        assert await eventually(lambda: len(props) >= 300)
        by_id = {m.message_id: m for m in props}
        first = by_id[entries[0].uuid]
        assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert first.content_type == "application/json"
        assert logs.dropped == 0
    finally:
        await logs.close()
        await tap.close()
        await channel.close()


async def test_a_body_larger_than_a_frame_arrives_whole(amqp, settings):
    tap = await Tap.open(amqp, settings, "sms.logs", f"log.{CH}")
    logs = await ChannelLogPublisher(amqp, settings, "test").start()
    try:
        big = ChannelLog(channel_uuid=CH, type="msg_receive", msg_id="big", errors=["x" * 400_000])
        logs.add(big)
        logs.add(entry("after-big"))
        received = await tap.wait(2, where=lambda m: m.body["msg_id"] in ("big", "after-big"))
        assert {m.body["msg_id"]: len(m.raw) for m in received}["big"] == len(big.to_bytes())
    finally:
        await logs.close()
        await tap.close()


async def test_a_full_buffer_drops_and_counts_instead_of_waiting(amqp, settings):
    tap = await Tap.open(amqp, settings, "sms.logs", f"log.{CH}")
    logs = await ChannelLogPublisher(amqp, settings, "test-full", max_buffered=3).start()
    counted = LOGS_DROPPED.labels("test-full")._value.get()
    try:
        for i in range(5):  # one loop turn: the writer has not run yet
            logs.add(entry(f"full-{i}"))
        assert logs.dropped == 2
        assert LOGS_DROPPED.labels("test-full")._value.get() == counted + 2
        received = await tap.wait(3, where=lambda m: m.body["msg_id"].startswith("full-"))
        assert sorted(m.body["msg_id"] for m in received) == ["full-0", "full-1", "full-2"]
    finally:
        await logs.close()
        await tap.close()


async def test_close_publishes_what_is_still_queued(amqp, settings):
    tap = await Tap.open(amqp, settings, "sms.logs", f"log.{CH}")
    logs = await ChannelLogPublisher(amqp, settings, "test").start()
    try:
        logs.add(entry("queued-at-close"))
        await logs.close()  # before the writer's turn
        await tap.wait(1, where=lambda m: m.body["msg_id"] == "queued-at-close")
    finally:
        await tap.close()


async def test_broker_away_drops_logs_then_publishes_again_after_the_reconnect(amqp, settings, rabbitmq_url):
    target = urlsplit(rabbitmq_url)
    proxy = await TcpProxy(target.hostname, target.port or 5672).start()
    via = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
    own = await connect(Settings(RABBITMQ_URL=via), attempts=3)
    await declare_topology(own, settings)
    tap = await Tap.open(amqp, settings, "sms.logs", f"log.{CH}")
    logs = await ChannelLogPublisher(own, settings, "test-outage").start()
    try:
        logs.add(entry("before"))
        await tap.wait(1, where=lambda m: m.body["msg_id"] == "before")

        await proxy.stop()
        assert await eventually(lambda: not own.connected.is_set())
        logs.add(entry("during"))
        assert await eventually(lambda: logs.dropped >= 1)

        await proxy.start()
        assert await eventually(lambda: own.connected.is_set(), timeout=15)

        async def arrived() -> bool:
            logs.add(entry("after"))
            try:
                await tap.wait(1, timeout=0.5, where=lambda m: m.body["msg_id"] == "after")
                return True
            except AssertionError:
                return False

        for _ in range(20):  # the robust channel is re-opened shortly after the connection
            if await arrived():
                break
        else:
            raise AssertionError("no channel log published after the reconnect")
        assert "during" not in [m.body["msg_id"] for m in tap.messages]
    finally:
        await logs.close()
        await tap.close()
        await own.close()
        await proxy.stop()
