"""Consumer + Requeue: a handler that cannot finish for an outside reason gets its delivery
back on the queue at once (the SMPP connector raises it when its link goes down)."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest

from services.core.broker import Consumer, Requeue
from services.core.models import SendRequest

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"


async def test_requeue_returns_the_delivery_to_the_queue_without_delay(amqp, publisher, settings):
    queue = "transport.external"
    seen: list[tuple[bool, float]] = []
    done = asyncio.Event()

    async def handler(request: SendRequest, delivery):
        seen.append((delivery.redelivered, time.monotonic()))
        if len(seen) == 1:
            raise Requeue("link down")
        done.set()

    consumer = Consumer(amqp, publisher, settings, queue, handler, model=SendRequest, prefetch=1)
    await consumer.start()
    try:
        body = orjson.dumps({"id": 7, "channel_uuid": CH, "to": "+250788123123", "text": "again"})
        await publisher.publish("sms.transport", "external", body)
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await consumer.stop()
    assert [r for r, _ in seen] == [False, True]
    assert seen[1][1] - seen[0][1] < 0.4  # no error pause


@pytest.mark.parametrize("outcome", ["ok", "error", "requeue"])
async def test_a_handler_outliving_its_channel_logs_no_error_and_the_delivery_comes_back(
    amqp, publisher, settings, caplog, outcome
):
    """The consumer's channel closes (a stop, a lost connection) while a handler runs: its
    ack or nack has nowhere to go, which is fine (the broker redelivers what was not acked),
    and must not be logged as a failing consumer callback."""
    queue = "transport.external"
    running, release, again = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: list[bool] = []

    async def handler(request: SendRequest, delivery):
        if request.text != outcome:
            return  # not this test's message
        seen.append(delivery.redelivered)
        if len(seen) > 1:
            again.set()
            return
        running.set()
        await release.wait()
        if outcome == "error":
            raise RuntimeError("failed after the close")
        if outcome == "requeue":
            raise Requeue("link down after the close")

    first = Consumer(amqp, publisher, settings, queue, handler, model=SendRequest, prefetch=1)
    await first.start()
    second = None
    try:
        body = orjson.dumps({"id": 8, "channel_uuid": CH, "to": "+250788123123", "text": outcome})
        await publisher.publish("sms.transport", "external", body)
        await asyncio.wait_for(running.wait(), 5)
        with caplog.at_level(logging.ERROR, logger="aiormq"):
            await first._channel.close()
            release.set()
            await asyncio.sleep(0.7 if outcome == "error" else 0.2)  # the failing handler's pause
        assert [r.getMessage() for r in caplog.records if r.name.startswith("aiormq")] == []
        second = Consumer(amqp, publisher, settings, queue, handler, model=SendRequest, prefetch=1)
        await second.start()
        await asyncio.wait_for(again.wait(), 5)
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
    assert seen == [False, True]
