"""One socket write per event-loop turn for everything a process sends to RabbitMQ.

aiormq writes each frame it takes from its queue with its own `transport.write`, and on an
idle socket every such write is a `send()` system call (on loopback, the kernel also does the
broker's receive inside it and wakes the broker). A connector handling a few hundred
messages at once writes a publish per status, an ack batch, a publish per channel log batch
... each its own call: py-spy put `StreamWriter.write` at 14% of the SMPP connector's CPU.

`BatchingTransportFactory` is aiormq's documented `transport_factory` hook: the connection's
StreamWriter sits on a transport proxy that queues the bytes written during one loop turn and
hands them to the real transport as one write on the next turn (`call_soon`), in order.
Nothing else changes: frames are the same bytes in the same order, confirms and acks are
still aiormq's, and `close`/`write_eof` flush what is queued first. Flow control works as
before: the real transport's buffer, which `drain()` watches, gets the data one turn later.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aio_pika import RobustConnection
from aiormq.connection import TCPTransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL


class BatchingTransport:
    """Forwards to `transport`, except that writes are joined per loop turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._queued: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._queued.append(data)
        if len(self._queued) == 1:
            self._loop.call_soon(self.flush)

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._queued:
            return
        data = b"".join(self._queued) if len(self._queued) > 1 else self._queued[0]
        self._queued = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._queued = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._queued))

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, can_write_eof ...
        return getattr(self._transport, name)


class BatchingTransportFactory(TCPTransportFactory):
    """Plain TCP (as aiormq's own factory) with a :class:`BatchingTransport` under the writer."""

    async def create(self, url, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kwargs.pop("ssl_context_provider", None)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, host=url.host, port=url.port, **kwargs)
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        writer = asyncio.StreamWriter(BatchingTransport(transport, loop), protocol, reader, loop)
        return reader, writer


class BatchingRobustConnection(RobustConnection):
    """aio-pika's robust connection on a :class:`BatchingTransportFactory` (aio-pika passes only
    the parameters it knows to aiormq, so the factory is set here); reconnects keep it."""

    def __init__(self, url, **kwargs: Any):
        super().__init__(url, **kwargs)
        self.kwargs["transport_factory"] = BatchingTransportFactory()


async def connect_batching(url: str, client_properties: dict[str, Any]) -> RobustConnection:
    """As `aio_pika.connect_robust(url, client_properties=...)`, with batched socket writes."""
    connection = BatchingRobustConnection(URL(url), client_properties=client_properties)
    await connection.connect()
    return connection
