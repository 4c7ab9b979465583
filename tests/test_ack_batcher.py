"""AckBatcher: contiguous finished deliveries become one multiple ack; a slow one holds back nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiormq.exceptions import ChannelInvalidStateError

from services.core.broker import AckBatcher


class FakeChannel:
    def __init__(self):
        self.is_closed = False
        self.acks: list[tuple[int, bool]] = []

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.acks.append((tag, multiple))


def deliveries(channel, tags):
    return {t: SimpleNamespace(channel=channel, delivery_tag=t) for t in tags}


async def test_runs_are_acked_together_and_stragglers_alone():
    channel = FakeChannel()
    batcher = AckBatcher(delay=0.001)
    msgs = deliveries(channel, range(1, 7))
    for m in msgs.values():
        batcher.received(m)
    for tag in (2, 3, 5):
        batcher.done(msgs[tag])
    await asyncio.sleep(0.02)
    assert sorted(channel.acks) == [(2, False), (3, False), (5, False)]  # 1 is still running: nothing waits for it
    channel.acks.clear()
    batcher.forget(msgs[4])  # nacked elsewhere
    batcher.done(msgs[1])
    batcher.done(msgs[6])
    await asyncio.sleep(0.02)
    assert channel.acks == [(6, True)]  # 1..6 all settled: one frame


async def test_drain_sends_what_is_due_and_closed_channels_are_dropped():
    old, new = FakeChannel(), FakeChannel()
    batcher = AckBatcher(delay=10)
    stale, fresh = deliveries(old, [1])[1], deliveries(new, [1])[1]
    batcher.received(stale)
    batcher.received(fresh)
    old.is_closed = True  # reconnected: the broker redelivers what the old channel held
    batcher.done(stale)
    batcher.done(fresh)
    await batcher.drain()
    assert old.acks == [] and new.acks == [(1, True)]


class ClosedDelivery:
    """What aio-pika's IncomingMessage does once its channel closed: `channel` raises."""

    delivery_tag = 1

    @property
    def channel(self):
        raise ChannelInvalidStateError("closed")


async def test_a_delivery_whose_channel_closed_is_dropped_not_raised():
    channel = FakeChannel()
    batcher = AckBatcher(delay=0.001)
    live = deliveries(channel, [2])[2]
    batcher.received(live)
    gone = ClosedDelivery()
    batcher.received(gone)  # the channel closed before the handler ran
    batcher.forget(gone)  # a handler failed or was cancelled after the close
    batcher.done(gone)  # ... or finished after it
    batcher.done(live)
    await asyncio.sleep(0.02)
    assert channel.acks == [(2, True)]  # the other channel's deliveries are unaffected
