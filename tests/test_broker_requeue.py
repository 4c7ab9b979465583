"""Consumer + Requeue: a handler that cannot finish for an outside reason gets its delivery
back on the queue at once (the SMPP connector raises it when its link goes down)."""

from __future__ import annotations

import asyncio
import time

import orjson

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
