"""One SMPP 3.4 session: a TCP connection to the SMSC and its bind, over asyncio streams.

smpplib's blocking client is not used: the codec's smpplib PDU classes are written with
``transport.write`` and read with :func:`codec.read_pdu`, so one event loop serves the bind,
RabbitMQ and Redis. The session

- binds (transceiver, transmitter or receiver) and raises :class:`BindRefused` with the
  SMSC's command_status when it says no;
- keeps at most ``window`` submit_sm without a response (:class:`Window`), matches responses
  by sequence number, and gives up on one after ``submit_timeout_s`` (:class:`SubmitTimeout`:
  the session is closed, because an SMSC that stopped answering one PDU is not trusted with
  the next);
- answers the SMSC's enquire_link and unbind, sends its own enquire_link every
  ``enquire_link_s`` and closes when one goes unanswered;
- hands every deliver_sm to ``on_deliver``, which returns the deliver_sm_resp status (an
  exception answers ESME_RX_T_APPN, so the SMSC delivers it again later);
- on close fails everything waiting with :class:`LinkDown`: those submits were not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.channels import SmppConnection
from ..protocols.smpp import (
    PduError,
    SequenceGenerator,
    encode_deliver_sm_resp,
    encode_pdu,
    encode_submit_sm,
    make_pdu,
    make_response,
    read_hot_pdu,
    status_name,
)

log = logging.getLogger(__name__)

ESME_RX_T_APPN = 0x64
ESME_RINVCMDID = 0x03
CONNECT_TIMEOUT_S = 10.0
BIND_TIMEOUT_S = 10.0
UNBIND_TIMEOUT_S = 2.0
_DRAIN_ABOVE = 256 * 1024

DeliverHandler = Callable[[Any], Awaitable[int]]


class LinkDown(Exception):
    """The session closed before the SMSC answered: the PDU was not confirmed."""


class SubmitTimeout(LinkDown):
    """No submit_sm_resp within ``submit_timeout_s``; the session was closed. The SMSC may
    still have accepted the message, so sending it again may deliver it twice."""


class BindRefused(Exception):
    """The SMSC answered the bind with an error status (wrong system_id or password ...)."""

    def __init__(self, status: int):
        super().__init__(f"bind refused: {status_name(status)}")
        self.status = status


class Window:
    """At most ``size`` holders at once; waiters are served in order and can all be failed
    at once when the session closes (a Semaphore cannot)."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> None:
        if self.used < self.size and not self._waiters:
            self.used += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed to us as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot goes straight to the next waiter
                return
        self.used -= 1

    def fail(self, exc: Exception) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(exc)


class Session:
    """One bind to the SMSC; see the module docstring. Create with :meth:`open`."""

    def __init__(self, connection: SmppConnection, bind: str, on_deliver: DeliverHandler | None = None):
        self.connection = connection
        self.bind = bind  # transceiver | transmitter | receiver
        self.on_deliver = on_deliver
        self.window = Window(connection.window)
        self.sequences = SequenceGenerator()
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.bound = False
        self._pending: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []
        self._unbound_by_us = False

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    @classmethod
    async def open(cls, connection: SmppConnection, bind: str, on_deliver: DeliverHandler | None = None) -> Session:
        """Connect and bind; raises BindRefused, OSError or TimeoutError (nothing left open)."""
        session = cls(connection, bind, on_deliver)
        try:
            await session._connect_and_bind()
        except BaseException:
            session._shutdown("bind failed")
            raise
        return session

    async def _connect_and_bind(self) -> None:
        c = self.connection
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(c.host, c.port), CONNECT_TIMEOUT_S)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._spawn(self._read_loop())
        resp = await self.request(
            make_pdu(f"bind_{self.bind}", sequences=self.sequences, system_id=c.system_id, password=c.password,
                     system_type=c.system_type, interface_version=0x34),  # fmt: skip
            BIND_TIMEOUT_S,
        )
        if resp.status:
            raise BindRefused(resp.status)
        self.bound = True
        self._spawn(self._enquire_loop())

    # ------------------------------------------------------------------ sending

    def send(self, pdu) -> None:
        self.write(encode_pdu(pdu))

    def write(self, data: bytes) -> None:
        """Queue PDU bytes; everything queued during one loop turn goes out in one socket
        write on the next (one syscall for the submits and responses of many tasks)."""
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
        if self._writer is not None and not self._writer.transport.is_closing():
            self._writer.transport.write(data)

    async def request(self, pdu, timeout: float):
        """Send a request PDU and wait for its response (any status); LinkDown on close,
        TimeoutError when none came within ``timeout``."""
        future = asyncio.get_running_loop().create_future()
        self._pending[pdu.sequence] = future
        try:
            self.send(pdu)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(pdu.sequence, None)

    async def submit(self, fields: dict[str, Any]):
        """Send one submit_sm within the window and return its submit_sm_resp (any status).

        Raises LinkDown when the session closes first and SubmitTimeout (after closing the
        session) when no response comes within ``submit_timeout_s``."""
        await self.window.acquire()
        try:
            sequence = self.sequences.next_sequence()
            data = encode_submit_sm(sequence, fields)
            loop = asyncio.get_running_loop()
            future = self._pending[sequence] = loop.create_future()
            # a timer rather than wait_for: one callback instead of a timeout context per submit
            timer = loop.call_later(self.connection.submit_timeout_s, self._submit_timed_out, future)
            try:
                self.write(data)
                return await future
            finally:
                timer.cancel()
                self._pending.pop(sequence, None)
        finally:
            self.window.release()

    def _submit_timed_out(self, future: asyncio.Future) -> None:
        if future.done():
            return
        reason = f"no submit_sm_resp within {self.connection.submit_timeout_s:g} s"
        future.set_exception(SubmitTimeout(reason))
        self._shutdown(reason)

    async def drain(self) -> None:
        if self._writer is not None and self._writer.transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await self._writer.drain()

    # ------------------------------------------------------------------ receiving

    async def _read_loop(self) -> None:
        reason = "connection closed by the SMSC"
        try:
            while True:
                try:
                    pdu = await read_hot_pdu(self._reader)
                except PduError as exc:
                    log.warning("malformed PDU from the SMSC", extra={"connection": self.connection.name, "error": str(exc)})
                    if exc.sequence is None:
                        reason = f"unreadable stream: {exc}"
                        break
                    self.send(make_pdu("generic_nack", sequence=exc.sequence, status=exc.status))
                    continue
                if pdu.is_response():
                    future = self._pending.get(pdu.sequence)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                    continue
                command = pdu.command
                if command == "deliver_sm":
                    self._spawn(self._deliver(pdu))
                elif command == "enquire_link":
                    self.send(make_response(pdu))
                elif command == "unbind":
                    self.send(make_response(pdu))
                    reason = "unbind from the SMSC"
                    break
                else:
                    self.send(make_pdu("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))
                await self.drain()
        except (asyncio.IncompleteReadError, ConnectionError, LinkDown):
            pass
        except asyncio.CancelledError:
            reason = "closed"
        except Exception as exc:  # a bug here must close the session, not kill the process
            log.exception("SMPP read loop failed", extra={"connection": self.connection.name})
            reason = f"read loop failed: {exc}"
        self._shutdown(reason)

    async def _deliver(self, pdu) -> None:
        if self.on_deliver is None:
            status = ESME_RX_T_APPN
        else:
            try:
                status = await self.on_deliver(pdu)
            except Exception:
                log.exception("deliver_sm handling failed; answered ESME_RX_T_APPN", extra={"connection": self.connection.name})
                status = ESME_RX_T_APPN
        with contextlib.suppress(LinkDown):
            if pdu.command == "deliver_sm":
                self.write(encode_deliver_sm_resp(pdu.sequence, status))
            else:
                self.send(make_response(pdu, status=status))

    async def _enquire_loop(self) -> None:
        interval = self.connection.enquire_link_s
        while not self.closed.done():
            await asyncio.sleep(interval)
            try:
                await self.request(make_pdu("enquire_link", sequences=self.sequences), max(interval, 10.0))
            except TimeoutError:
                self._shutdown("enquire_link unanswered")
                return
            except LinkDown:
                return

    # ------------------------------------------------------------------ closing

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _shutdown(self, reason: str) -> None:
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
        self._flush_writes()  # e.g. the unbind_resp just queued
        if self._writer is not None:
            self._writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.get_coro().__name__ == "_deliver":
                task.cancel()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no submit awaits its response (bounded); True when idle."""
        deadline = time.monotonic() + timeout
        while self._pending and not self.closed.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self._pending

    async def close(self, timeout: float = UNBIND_TIMEOUT_S) -> None:
        """Unbind (waiting at most ``timeout`` for unbind_resp), then close the socket."""
        if self.bound and not self.closed.done():
            self._unbound_by_us = True
            with contextlib.suppress(LinkDown, TimeoutError):
                await self.request(make_pdu("unbind", sequences=self.sequences), timeout)
        self._shutdown("unbound")
        deliveries = [t for t in self._tasks if not t.done()]
        if deliveries:
            await asyncio.wait(deliveries, timeout=timeout)
