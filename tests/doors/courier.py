"""A mock RapidPro courier over real HTTP/1.1 (keep-alive): records every request and answers
with what `answer(request)` says (default 200). Bare asyncio, so it works on any loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import read_http_request


@dataclass
class Request:
    method: str
    target: str  # raw path and query, as sent
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # what we answered

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


class MockCourier:
    def __init__(self, answer: Callable[[Request], tuple[int, str]] | None = None):
        self.answer = answer or (lambda request: (200, "ok"))
        self.requests: list[Request] = []
        self.port = 0
        self.delay = 0.0  # seconds before each answer
        self._server: asyncio.AbstractServer | None = None
        self._changed = asyncio.Event()

    async def start(self) -> MockCourier:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answered(self, where=lambda r: True, ok_only: bool = True) -> list[Request]:
        return [r for r in self.requests if where(r) and (not ok_only or 200 <= r.status < 300)]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, target, headers, body = await read_http_request(reader)
                request = Request(method, target, headers, body)
                if self.delay:
                    await asyncio.sleep(self.delay)
                status, text = self.answer(request)
                request.status = status
                self.requests.append(request)
                self._changed.set()
                payload = text.encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
