"""One TCP connection to an SMSC, whatever the protocol: the part every session shares.

A protocol's session (SMPP, UCP, CIMD2) subclasses :class:`Session` and supplies the frames:

- :meth:`Session.login` sends the bind / login and raises :class:`LoginRefused` on a no;
- :meth:`Session.read_frame` reads one frame (and answers or skips a malformed one itself);
- :meth:`Session.response_key` says which request a frame answers (None: a request from the
  SMSC), and :meth:`Session.on_request` handles such a request (a keep-alive is answered at
  once, a delivery is handed to :meth:`Session.deliver`);
- :meth:`Session.encode_submit` turns one part into ``(key, bytes)``, taking a free key
  (sequence number, TRN, packet number) for it;
- :meth:`Session.keepalive` and :meth:`Session.logout` build those requests.

What the base does for all of them:

- connects with TCP_NODELAY and coalesces the writes of one loop turn into one syscall;
- keeps at most ``window`` submits without an answer (:class:`~.window.Window`) and matches
  answers to requests by key; gives up on a submit after ``submit_timeout_s``
  (:class:`SubmitTimeout`: the session is closed, because an SMSC that stopped answering one
  request is not trusted with the next);
- sends a keep-alive when nothing was sent for ``keepalive_s`` and closes when it goes
  unanswered;
- answers a delivery only after its handler returned (which waits for the broker's
  confirm); a handler that raises gets the protocol's "try again later" answer;
- on close fails everything waiting with :class:`LinkDown`: those submits were not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from ..core.tls import TlsConfigError, client_context, describe
from .window import Window

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
LOGIN_TIMEOUT_S = 10.0
LOGOUT_TIMEOUT_S = 2.0
#: A keep-alive gets max(keepalive interval, this) to be answered before the session closes.
KEEPALIVE_ANSWER_MIN_S = 10.0
_DRAIN_ABOVE = 256 * 1024

#: What a session calls for each delivery from the SMSC; returns the protocol's answer.
DeliverHandler = Callable[[Any], Awaitable[Any]]


class LinkDown(Exception):
    """The session closed before the SMSC answered: the request was not confirmed."""


class SubmitTimeout(LinkDown):
    """No answer to a submit within ``submit_timeout_s``; the session was closed. The SMSC may
    still have accepted the message, so sending it again may deliver it twice."""


class LoginRefused(Exception):
    """The SMSC answered the bind / login with an error (wrong user or password ...)."""


class Closed(Exception):
    """Raised by a protocol's frame reader or request handler to close the session with a
    reason (an unbind from the SMSC, an unreadable stream)."""


async def open_stream(connection) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP to `host:port`, over TLS when the connection says `tls: true` (the certificate
    checked against `tls_ca` or the system CAs unless `tls_verify: false`; `host` as SNI).
    A failed handshake or an unusable `tls_ca` is a ConnectionError with one clear line, so
    the link logs it and retries like any failed connect."""
    if not getattr(connection, "tls", False):
        return await asyncio.open_connection(connection.host, connection.port)
    try:
        context = client_context(connection.tls_ca, connection.tls_verify)
        return await asyncio.open_connection(connection.host, connection.port, ssl=context,
                                             server_hostname=connection.host)  # fmt: skip
    except (ssl.SSLError, TlsConfigError) as exc:
        raise ConnectionError(describe(exc)) from None


class Session(ABC):
    """One connection and its login; see the module docstring. Create with :meth:`open`.

    `connection` needs `name`, `host`, `port`, `window`, `submit_timeout_s` and the
    keep-alive interval :attr:`keepalive_s` (read through :meth:`keepalive_interval`)."""

    #: The log name of the protocol ("SMPP", "UCP", "CIMD2").
    protocol = "SMSC"

    def __init__(self, connection, role: str, on_deliver: DeliverHandler | None = None):
        self.connection = connection
        self.role = role
        self.on_deliver = on_deliver
        self.window = Window(connection.window)
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.bound = False
        self.last_sent = time.monotonic()
        self._pending: dict[Hashable, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._deliveries: set[asyncio.Task] = set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []

    # ------------------------------------------------------------------ protocol hooks

    @abstractmethod
    async def login(self) -> None:
        """Bind / log in (await :meth:`request`); raise LoginRefused when the SMSC says no."""

    @abstractmethod
    async def read_frame(self) -> Any:
        """The next frame from ``self.reader``; IncompleteReadError at the end of the stream."""

    @abstractmethod
    def response_key(self, frame) -> Hashable | None:
        """The key of the request `frame` answers, or None when it is a request itself."""

    @abstractmethod
    def on_request(self, frame) -> None:
        """A request from the SMSC: answer it (:meth:`write`) or hand it to :meth:`deliver`;
        raise :class:`Closed` to end the session (e.g. an unbind)."""

    @abstractmethod
    def encode_submit(self, part) -> tuple[Hashable, bytes]:
        """The key and bytes of one submit of `part`, taking a free key for it."""

    @abstractmethod
    def encode_answer(self, frame, answer) -> bytes:
        """The answer to a delivery; `answer` is what the handler returned, or None when it
        failed (the protocol's "try again later")."""

    @abstractmethod
    def keepalive(self) -> tuple[Hashable, bytes]:
        """The key and bytes of a keep-alive request."""

    def logout(self) -> tuple[Hashable, bytes] | None:
        """The key and bytes of the logout / unbind request, or None when there is none."""
        return None

    def keepalive_interval(self) -> float:
        return self.connection.keepalive_s

    # ------------------------------------------------------------------ opening

    @property
    def reader(self) -> asyncio.StreamReader:
        assert self._reader is not None
        return self._reader

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    @classmethod
    async def open(cls, connection, role: str, on_deliver: DeliverHandler | None = None) -> Session:
        """Connect and log in; raises LoginRefused, OSError or TimeoutError (nothing left open)."""
        session = cls(connection, role, on_deliver)
        try:
            await session._connect_and_login()
        except BaseException:
            session.shutdown("login failed")
            raise
        return session

    async def _connect_and_login(self) -> None:
        c = self.connection
        self._reader, self._writer = await asyncio.wait_for(open_stream(c), CONNECT_TIMEOUT_S)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.spawn(self._read_loop())
        await self.login()
        self.bound = True
        self.spawn(self._keepalive_loop())

    # ------------------------------------------------------------------ sending

    def write(self, data: bytes) -> None:
        """Queue frame bytes; everything queued during one loop turn goes out in one socket
        write on the next (one syscall for the submits and answers of many tasks)."""
        if self.closed.done() or self._writer is None:
            raise LinkDown(self.closed.result() if self.closed.done() else "not connected")
        self._out.append(data)
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._flush_writes)

    def _flush_writes(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out = []
        self.last_sent = time.monotonic()
        if self._writer is not None and not self._writer.transport.is_closing():
            self._writer.transport.write(data)

    async def request(self, key: Hashable, data: bytes, timeout: float):
        """Send a request and wait for its answer frame; LinkDown on close, TimeoutError when
        none came within ``timeout``."""
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.write(data)
            return await asyncio.wait_for(future, timeout)
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]

    async def submit(self, part):
        """Send one submit within the window and return its answer frame (positive or not).

        Raises LinkDown when the session closes first and SubmitTimeout (after closing the
        session) when no answer comes within ``submit_timeout_s``."""
        await self.window.acquire()
        try:
            if self.closed.done():
                raise LinkDown(self.closed.result())
            key, data = self.encode_submit(part)
            loop = asyncio.get_running_loop()
            future = self._pending[key] = loop.create_future()
            # a timer rather than wait_for: one callback instead of a timeout context per submit
            timer = loop.call_later(self.connection.submit_timeout_s, self._submit_timed_out, future)
            try:
                self.write(data)
                return await future
            finally:
                timer.cancel()
                if self._pending.get(key) is future:
                    del self._pending[key]
        finally:
            self.window.release()

    def key_in_use(self, key: Hashable) -> bool:
        return key in self._pending

    def _submit_timed_out(self, future: asyncio.Future) -> None:
        if future.done():
            return
        reason = f"no answer to a submit within {self.connection.submit_timeout_s:g} s"
        future.set_exception(SubmitTimeout(reason))
        self.shutdown(reason)

    async def drain(self) -> None:
        if self._writer is not None and self._writer.transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await self._writer.drain()

    # ------------------------------------------------------------------ receiving

    async def _read_loop(self) -> None:
        reason = "connection closed by the SMSC"
        try:
            while True:
                frame = await self.read_frame()
                if frame is None:
                    continue  # malformed, answered or skipped by the protocol
                key = self.response_key(frame)
                if key is not None:
                    future = self._pending.get(key)
                    if future is not None and not future.done():
                        future.set_result(frame)
                    continue
                self.on_request(frame)
                await self.drain()
        except Closed as exc:
            reason = str(exc)
        except (asyncio.IncompleteReadError, ConnectionError, LinkDown):
            pass
        except asyncio.CancelledError:
            reason = "closed"
        except Exception as exc:  # a bug here must close the session, not kill the process
            log.exception(f"{self.protocol} read loop failed", extra={"connection": self.connection.name})
            reason = f"read loop failed: {exc}"
        self.shutdown(reason)

    def deliver(self, frame) -> None:
        """Hand a delivery to ``on_deliver`` and answer it once that returned."""
        task = asyncio.ensure_future(self._deliver(frame))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, frame) -> None:
        answer = None
        if self.on_deliver is not None:
            try:
                answer = await self.on_deliver(frame)
            except Exception:
                log.exception(f"{self.protocol} delivery handling failed; answered 'try later'",
                              extra={"connection": self.connection.name})  # fmt: skip
        with contextlib.suppress(LinkDown):
            self.write(self.encode_answer(frame, answer))

    async def _keepalive_loop(self) -> None:
        interval = self.keepalive_interval()
        while not self.closed.done():
            idle_for = time.monotonic() - self.last_sent
            if idle_for < interval:
                await asyncio.sleep(interval - idle_for)
                continue
            key, data = self.keepalive()
            try:
                await self.request(key, data, max(interval, KEEPALIVE_ANSWER_MIN_S))
            except TimeoutError:
                self.shutdown("keep-alive unanswered")
                return
            except LinkDown:
                return

    # ------------------------------------------------------------------ closing

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def shutdown(self, reason: str) -> None:
        """Close now: everything waiting for the SMSC fails with LinkDown."""
        if self.closed.done():
            return
        self.bound = False
        self.closed.set_result(reason)
        error = LinkDown(reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self.window.fail(error)
        self._flush_writes()  # e.g. the unbind answer just queued
        if self._writer is not None:
            self._writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no submit awaits its answer (bounded); True when idle."""
        deadline = time.monotonic() + timeout
        while self._pending and not self.closed.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self._pending

    async def close(self, timeout: float = LOGOUT_TIMEOUT_S) -> None:
        """Log out (waiting at most ``timeout`` for the answer), then close the socket; the
        deliveries being handled get up to ``timeout`` to be answered."""
        if self.bound and not self.closed.done():
            logout = self.logout()
            if logout is not None:
                with contextlib.suppress(LinkDown, TimeoutError):
                    await self.request(*logout, timeout)
        self.shutdown("unbound")
        deliveries = [t for t in self._deliveries if not t.done()]
        if deliveries:
            await asyncio.wait(deliveries, timeout=timeout)


class FramedSession(Session):
    """A session whose codec is a push parser (UCP and CIMD2 frames between STX and ETX):
    ``parser.feed(bytes)`` returns frames and, in their place, the errors of malformed ones,
    which :meth:`malformed` answers (a NACK) or skips."""

    def __init__(self, connection, role: str, on_deliver: DeliverHandler | None = None):
        super().__init__(connection, role, on_deliver)
        self.parser = self.new_parser()
        self._items: deque = deque()

    @abstractmethod
    def new_parser(self):
        ...

    @abstractmethod
    def malformed(self, error: Exception) -> None:
        """Answer (or skip) a frame that could not be decoded."""

    async def read_frame(self):
        while not self._items:
            data = await self.reader.read(65536)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            self._items.extend(self.parser.feed(data))
        item = self._items.popleft()
        if isinstance(item, Exception):
            log.warning(f"malformed {self.protocol} frame from the SMSC", extra={"connection": self.connection.name,
                                                                                "error": str(item)})  # fmt: skip
            self.malformed(item)
            return None
        return item
