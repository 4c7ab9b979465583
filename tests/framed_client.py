"""A small asyncio client for the STX/ETX protocols (UCP/EMI, CIMD2), built on our codecs,
for tests that talk to a simulated SMSC over real TCP.

It answers the SMSC's own requests by itself (``answer(frame)`` returns the reply, False
to stay silent, or None when the frame is no SMSC request, e.g. a result the test waits for
with :meth:`FramedClient.expect`), keeps every frame it received, and keeps the raw bytes in both directions
so a test can hand them to an independent checker (:mod:`tests.wirecheck`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

T = 5.0
_FRAME = re.compile(rb"\x02[^\x02\x03]*\x03")


class FramedClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser,
                 encode: Callable[[Any], bytes], answer: Callable[[Any], Any | None]):
        self.reader, self.writer = reader, writer
        self.parser, self.encode, self.answer = parser, encode, answer
        self.inbox: list[Any] = []  # frames not yet taken by expect()
        self.requests: list[Any] = []  # the SMSC's own operations, answered by ``answer``
        self.errors: list[Exception] = []
        self.raw_in = bytearray()
        self.raw_out = bytearray()
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    @classmethod
    async def connect(cls, port: int, parser, encode, answer) -> FramedClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), T)
        return cls(reader, writer, parser, encode, answer)

    async def _run(self) -> None:
        try:
            while data := await self.reader.read(65536):
                self.raw_in += data
                for item in self.parser.feed(data):
                    if isinstance(item, Exception):
                        self.errors.append(item)
                        continue
                    reply = self.answer(item)
                    if reply is not None:
                        self.requests.append(item)
                        if reply is not False:
                            self.send(reply)
                    else:
                        self.inbox.append(item)
                self._changed.set()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    def send(self, frame: Any) -> None:
        data = frame if isinstance(frame, bytes | bytearray) else self.encode(frame)
        self.raw_out += data
        self.writer.write(data)

    async def expect(self, match: Callable[[Any], bool], timeout: float = T) -> Any:
        """The first received frame (not an SMSC request) for which ``match`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, frame in enumerate(self.inbox):
                if match(frame):
                    return self.inbox.pop(i)
            if self.closed.is_set():
                raise ConnectionError("connection closed while waiting")
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"nothing matched within {timeout} s; inbox: {self.inbox!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_requests(self, count: int, timeout: float = T) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.requests) < count:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed.is_set():
                raise TimeoutError(f"{len(self.requests)} of {count} SMSC requests came")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return list(self.requests)

    def frames_in(self) -> list[bytes]:
        return _FRAME.findall(bytes(self.raw_in))

    def frames_out(self) -> list[bytes]:
        return _FRAME.findall(bytes(self.raw_out))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
