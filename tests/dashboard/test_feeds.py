"""The dashboard's feeds on the real broker: its own queues on sms.status, sms.health and
sms.dead, and passive declares that survive a missing queue."""

from __future__ import annotations

import asyncio

import aio_pika

from services.core.models import StatusError, StatusUpdate
from services.dashboard.board import Board
from services.dashboard.feeds import Feeds

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"


async def eventually(check, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_statuses_heartbeats_and_dead_letters_reach_the_board(amqp, settings, publisher):
    board = Board()
    feeds = await Feeds(amqp, settings, board, queues_every_s=0.2).start()
    try:
        await publisher.publish_status(StatusUpdate(id=1, channel_uuid=CH, status="wired"))
        await publisher.publish_status(StatusUpdate(id=2, channel_uuid=CH, status="failed",
                                                    error=StatusError(code="response_status", message="HTTP 400")))
        await publisher.publish("sms.dead", "send.x", b"{not json", headers={"x-error": "body is not JSON"})
        from services.core.heartbeat import HeartbeatPublisher

        beat = await HeartbeatPublisher(amqp, settings, "feeds-test", interval_s=60).start()
        await eventually(lambda: board.statuses >= 2 and board.dead_seen >= 1 and beat.instance in board.workers)
        await beat.close()
        snap = board.snapshot()
        row = next(c for c in snap["channels"] if c["uuid"] == CH)
        assert row["last5"]["wired"] >= 1 and row["last5"]["failed"] >= 1
        assert row["last_error"]["code"] == "response_status"
        assert {"reason": "body is not JSON", "count": 1} in snap["dead"]["reasons"]
        # queue depths: the defaults (status.updates holds what we published) by passive declare
        await eventually(lambda: settings.name("status.updates") in board.queues)
        updates = board.queues[settings.name("status.updates")]
        assert updates["exists"] and updates["messages"] >= 2 and updates["consumers"] == 0
    finally:
        await feeds.close()


async def test_a_missing_queue_is_reported_and_does_not_break_the_next_declare(amqp, rabbitmq_url, settings):
    # A connection of its own, as the dashboard has: the session's shared one may be
    # reconnecting after another test's broker fault.
    connection = await aio_pika.connect_robust(rabbitmq_url)
    try:
        feeds = Feeds(connection, settings, Board())
        assert await feeds.inspect(settings.name("no.such.queue")) == (None, None)
        messages, consumers = await feeds.inspect(settings.name("dead.letters"))
        assert messages is not None and consumers is not None
        assert not connection.is_closed
    finally:
        await connection.close()


async def test_the_feed_queues_are_the_dashboards_own_and_go_with_it(rabbitmq_url, settings):
    connection = await aio_pika.connect_robust(rabbitmq_url)
    feeds = await Feeds(connection, settings, Board()).start()
    queue_names = list(feeds.queue_names)
    assert len(queue_names) == 3
    await feeds.close()
    await connection.close()
    probe = await aio_pika.connect(rabbitmq_url)
    try:
        for name in queue_names:
            channel = await probe.channel()
            try:
                await channel.declare_queue(name, passive=True)
                raise AssertionError(f"{name} outlived the dashboard")
            except aio_pika.exceptions.ChannelNotFoundEntity:
                pass
    finally:
        await probe.close()


async def test_the_feeds_come_back_after_the_broker_connection_is_lost(rabbitmq_url, settings, publisher):
    from urllib.parse import urlsplit

    from services.core.broker import connect
    from tests.inbound.proxy import TcpProxy

    target = urlsplit(rabbitmq_url)
    proxy = await TcpProxy(target.hostname, target.port or 5672).start()
    proxied = settings.model_copy(update={"rabbitmq_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}/"})
    connection = await connect(proxied, attempts=3)
    board = Board()
    feeds = await Feeds(connection, settings, board, queues_every_s=0.2).start()
    try:
        await publisher.publish_status(StatusUpdate(id="before", channel_uuid=CH, status="wired"))
        await eventually(lambda: any(r["id"] == "before" for r in board.tail))
        port = proxy.port
        await proxy.stop()  # the broker "goes away" for the dashboard only
        await asyncio.sleep(1)
        proxy.port = port
        await proxy.start()
        await eventually(lambda: connection.connected.is_set(), timeout=30)
        await asyncio.sleep(0.5)  # the reconnect callback subscribes again
        await publisher.publish_status(StatusUpdate(id="after", channel_uuid=CH, status="delivered"))
        await eventually(lambda: any(r["id"] == "after" for r in board.tail), timeout=20)
        # queue depths are read again too
        board.queues.clear()
        await eventually(lambda: settings.name("dead.letters") in board.queues)
    finally:
        await feeds.close()
        await connection.close()
        await proxy.stop()
