"""Batched AMQP socket writes: one write per loop turn, same bytes, same order, nothing lost."""

from __future__ import annotations

import asyncio

from services.core.amqp_socket import BatchingTransport
from services.core.broker import Publisher, connect
from services.core.settings import Settings


class FakeTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 5672)}.get(name, default)


async def test_writes_of_one_turn_leave_as_one_write_in_order():
    loop = asyncio.get_running_loop()
    real = FakeTransport()
    batching = BatchingTransport(real, loop)
    for chunk in (b"a", b"bc", b"def"):
        batching.write(chunk)
    batching.writelines([b"g", b"h"])
    assert real.writes == [] and batching.get_write_buffer_size() == 8
    await asyncio.sleep(0)
    assert real.writes == [b"abcdefgh"]
    batching.write(b"next turn")
    await asyncio.sleep(0)
    assert real.writes == [b"abcdefgh", b"next turn"]
    assert batching.get_extra_info("peername") == ("127.0.0.1", 5672)


async def test_close_and_eof_flush_first_abort_drops():
    loop = asyncio.get_running_loop()
    real = FakeTransport()
    batching = BatchingTransport(real, loop)
    batching.write(b"close-ok frame")
    batching.write_eof()
    assert real.writes == [b"close-ok frame"] and real.eof
    batching.write(b"last")
    batching.close()
    assert real.writes[-1] == b"last" and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing after close
    assert real.writes == [b"close-ok frame", b"last"]

    aborted = FakeTransport()
    batching = BatchingTransport(aborted, loop)
    batching.write(b"dropped")
    batching.abort()
    await asyncio.sleep(0)
    assert aborted.writes == [] and aborted.closed


async def test_confirmed_publishes_through_the_real_broker(settings: Settings, amqp):
    """Many concurrent confirmed publishes on a batching connection: every one confirmed, and
    a queue bound to them receives each body exactly once."""
    connection = await connect(settings, attempts=3)
    try:
        publisher = await Publisher(connection, settings).start()
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(settings.name("sms.status"), "status.batched.#")
        bodies = [b'{"n": %d}' % i for i in range(200)]
        for start in range(0, 200, 20):
            await asyncio.gather(*(publisher.publish("sms.status", "status.batched.x", b) for b in bodies[start : start + 20]))
        got = []
        while len(got) < 200:
            message = await queue.get(no_ack=True, fail=False, timeout=5)
            assert message is not None, f"only {len(got)} of 200 arrived"
            got.append(message.body)
        assert sorted(got) == sorted(bodies)
    finally:
        await connection.close()
