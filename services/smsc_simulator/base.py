"""What every simulated SMSC shares, whatever protocol it speaks.

:class:`SimulatorBase` owns the listener and the HTTP control interface (:mod:`.control`),
the record of what arrived (``messages`` reassembled, ``submits`` raw), counters, scripted
:class:`Faults`, unique submit time stamps, receipts (queued while nobody can receive them,
sent again when refused) and MO injection that waits for the client's answers.

A protocol (:mod:`.simulator` for SMPP, :mod:`.ucp`, :mod:`.cimd2`) subclasses it and
supplies the wire: how a connection is read (:meth:`SimulatorBase._converse`), how a
receipt or an MO part is written, and the names of its error codes. Submits go through
:meth:`SimulatorBase._judge_submit` (no_response, tps, errors by prefix),
:meth:`SimulatorBase._accept` (reassembly and the ``messages`` record) and
:meth:`SimulatorBase._drop_due` (``drop_after``), so faults behave alike everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from services.protocols.smpp import Reassembler, Segment, join_segments, strip_plus

log = logging.getLogger("switchboard.smsc_simulator")

CLOSE = object()
#: :meth:`SimulatorBase._judge_submit`: leave this submit unanswered
NO_RESPONSE = object()
_DRAIN_ABOVE = 256 * 1024


class NoReceiverError(RuntimeError):
    """No logged-in / bound session to deliver an MO or a receipt to."""


@dataclass
class Faults:
    """Scripted misbehaviour; change at run time with :meth:`SimulatorBase.set_faults`.

    ``tps_limit``: submits beyond this many per second (all sessions together) get the
    protocol's throttling error (SMPP ESME_RTHROTTLED, UCP NACK 04, CIMD2 900:10; 0 = off).
    ``error_by_prefix``: destination prefix -> the protocol's error code (SMPP
    ``{"+999": "ESME_RINVDSTADR"}`` or a number, UCP ``{"+999": "06"}``, CIMD2
    ``{"+999": 300}``; a leading ``+`` is ignored on both sides). ``no_response``: that many
    submits get no answer at all (-1: every one until cleared). ``drop_after``: the
    connection is closed (no logout) right after answering that many more submits.
    ``receipt_rules``: destination prefix -> receipt stat (``{"+2507": "UNDELIV"}``; default
    DELIVRD; SMPP stat names, mapped by each protocol).
    """

    tps_limit: float = 0.0
    error_by_prefix: dict[str, Any] = field(default_factory=dict)
    no_response: int = 0
    drop_after: int = 0
    receipt_rules: dict[str, str] = field(default_factory=dict)
    #: the protocol's error code from its written form, and back
    parse_error: Callable[[Any], Any] = field(default=str, repr=False, compare=False)
    error_name: Callable[[Any], str] = field(default=str, repr=False, compare=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("tps_limit", "error_by_prefix", "no_response", "drop_after",
                                         "receipt_rules")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (same names as the fields); ``ValueError`` on bad values."""
        for key, value in changes.items():
            if key == "tps_limit":
                self.tps_limit = float(value or 0)
            elif key == "error_by_prefix":
                self.error_by_prefix = {str(p): self.parse_error(s) for p, s in (value or {}).items()}
            elif key == "no_response":
                self.no_response = int(value or 0)
            elif key == "drop_after":
                self.drop_after = int(value or 0)
            elif key == "receipt_rules":
                self.receipt_rules = {str(p): str(s).upper() for p, s in (value or {}).items()}
            else:
                raise ValueError(f"unknown fault {key!r} (known: {', '.join(self.FIELDS)})")

    def to_dict(self) -> dict[str, Any]:
        return {"tps_limit": self.tps_limit,
                "error_by_prefix": {p: self.error_name(s) for p, s in self.error_by_prefix.items()},
                "no_response": self.no_response, "drop_after": self.drop_after,
                "receipt_rules": dict(self.receipt_rules)}


def match_prefix(rules: dict[str, Any], address: str):
    """Longest matching prefix rule for ``address`` (``+`` ignored), or None."""
    plain = strip_plus(address)
    best, best_len = None, -1
    for prefix, value in rules.items():
        p = strip_plus(prefix)
        if plain.startswith(p) and len(p) > best_len:
            best, best_len = value, len(p)
    return best


class Session:
    """One accepted TCP connection. ``account`` is the logged-in system id / user name;
    ``outstanding`` maps the numbers of requests the SMSC sent to what they carry."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.account: str | None = None
        self.logged_in = False
        self.outstanding: dict[Any, Any] = {}
        self.closed = False

    #: how many request numbers there are before they repeat
    numbers_in_cycle = 1 << 31

    def next_number(self) -> Any:  # pragma: no cover - every protocol overrides
        raise NotImplementedError

    @property
    def can_receive(self) -> bool:
        return self.logged_in

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def send(self, unit: Any) -> None:  # pragma: no cover - every protocol overrides
        """Encode ``unit`` (a PDU, frame or packet) and write it."""
        raise NotImplementedError


@dataclass
class Receipt:
    """A receipt on its way: ``fields`` are the protocol's (what its writer needs)."""

    account: str | None
    origin: Session | None
    fields: dict[str, Any]
    attempts: int = 0


@dataclass
class Mo:
    future: asyncio.Future


class SimulatorBase:
    """The protocol-neutral SMSC. Subclasses set ``protocol`` and implement the hooks named
    in the module docstring; the constructor arguments every protocol shares:

    ``accounts``: ``{account: password}`` to check logins against (None accepts any);
    ``receipt_delay``: seconds before a receipt goes out; receipts answered with an error
    are sent again after ``receipt_retry_delay`` s, at most ``receipt_max_retries`` times;
    ``control_port``: port of the HTTP control interface (None: none; 0: ephemeral);
    ``max_records``: how many messages and raw submits are kept (oldest dropped first);
    ``ssl``: an ``ssl.SSLContext`` with the server certificate: the port then speaks TLS (an
    SMSC behind stunnel, Kannel's ``use-ssl``).
    """

    protocol: ClassVar[str] = ""
    #: the error code a submit over ``tps_limit`` gets
    throttled: ClassVar[Any] = None
    COUNTERS: ClassVar[tuple[str, ...]] = (
        "connections", "binds", "bind_failures", "unbinds", "submits", "submits_unanswered",
        "receipts_sent", "receipts_acked", "receipts_failed", "receipts_retried", "mo_sent",
        "mo_acked", "mo_failed", "messages", "generic_nacks", "enquire_links", "drops")

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, control_port: int | None = None,
                 accounts: dict[str, str] | None = None, receipt_delay: float = 0.5,
                 receipt_retry_delay: float = 1.0, receipt_max_retries: int = 3,
                 faults: Faults | dict[str, Any] | None = None, max_records: int = 100_000, ssl: Any = None):
        self.host = host
        self.ssl = ssl  # an ssl.SSLContext with the server certificate: the SMSC port speaks TLS
        self.port = port
        self.control_port = control_port
        self.accounts = dict(accounts) if accounts is not None else None
        self.receipt_delay = receipt_delay
        self.receipt_retry_delay = receipt_retry_delay
        self.receipt_max_retries = receipt_max_retries
        if isinstance(faults, Faults):
            self.faults = faults
            self.faults.parse_error, self.faults.error_name = self.parse_error, self.error_name
        else:
            self.faults = self._new_faults()
            self.faults.update(faults or {})
        self.messages: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.submits: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.counters: Counter[str] = Counter()
        self.submit_statuses: Counter[str] = Counter()
        self._reassembler = Reassembler()
        self._part_ids: dict[Any, dict[int, str]] = {}
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task] = set()
        self._pending_receipts: dict[str | None, deque[Receipt]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._tps_window = 0.0
        self._tps_count = 0
        self._last_stamp: dict[str, datetime] = {}
        self._server: asyncio.base_events.Server | None = None
        self._control = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False

    # ------------------------------------------------------------------ protocol hooks

    @staticmethod
    def parse_error(value: Any) -> Any:
        """An error code as written in faults / on the command line -> the protocol's form."""
        return str(value)

    @staticmethod
    def error_name(code: Any) -> str:
        return str(code)

    def status_name(self, status: Any) -> str:
        """How an MO answer is shown on the control interface (0 / None = accepted)."""
        return "OK" if not status else str(status)

    def _new_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session:
        return Session(reader, writer)

    async def _converse(self, session: Session):  # pragma: no cover - every protocol overrides
        raise NotImplementedError

    def _free_number(self, session: Session) -> Any:
        """The number for the SMSC's next request on ``session`` that no outstanding request
        uses (None when all are in use: UCP has 100 TRNs, CIMD2 128 even numbers)."""
        for _ in range(session.numbers_in_cycle):
            number = session.next_number()
            if number not in session.outstanding:
                return number
        return None

    def _write_receipt(self, session: Session, number: Any, receipt: Receipt) -> None:
        """Write ``receipt`` to ``session`` as request ``number``."""
        raise NotImplementedError  # pragma: no cover

    def _mo_parts(self, session: Session, source: str, destination: str, text: str,
                  coding: str | int, split: str, ref: int) -> list[Any]:
        """What each part of an MO needs for :meth:`_write_mo_part` (``ValueError`` on text or
        coding that cannot be sent)."""
        raise NotImplementedError  # pragma: no cover

    def _write_mo_part(self, session: Session, number: Any, part: Any) -> None:
        raise NotImplementedError  # pragma: no cover

    # ------------------------------------------------------------------ lifecycle

    def _new_faults(self) -> Faults:
        return Faults(parse_error=self.parse_error, error_name=self.error_name)

    async def start(self):
        """Listen on ``host:port`` (and the control port); ``self.port`` becomes the bound port."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.control_port is not None:
            from .control import ControlServer

            self._control = ControlServer(self, self.host, self.control_port)
            await self._control.start()
            self.control_port = self._control.port
        log.info("smsc simulator listening", extra={"protocol": self.protocol, "host": self.host,
                                                     "port": self.port, "control_port": self.control_port})
        return self

    async def stop(self) -> None:
        """Close the listeners and every connection; pending receipts are dropped."""
        self._running = False
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._server is not None:
            self._server.close()
        for s in list(self._sessions):
            self._close(s)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        log.info("smsc simulator stopped", extra={"protocol": self.protocol})

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ------------------------------------------------------------------ public helpers

    def set_faults(self, clear: bool = False, **changes: Any) -> Faults:
        """Change faults (see :class:`Faults`); ``clear=True`` resets all first."""
        if clear:
            self.faults = self._new_faults()
        self.faults.update(changes)
        log.info("faults set", extra={"faults": self.faults.to_dict()})
        return self.faults

    def reset(self) -> None:
        """Forget received messages and raw submits (counters are kept)."""
        self.messages.clear()
        self.submits.clear()
        self._part_ids.clear()
        self._reassembler = Reassembler()

    def bound_sessions(self) -> list[dict[str, Any]]:
        return [{"peer": s.peer, "bind": self._bind_name(s), "system_id": s.account}
                for s in self._sessions if s.logged_in]

    def _bind_name(self, session: Session) -> str:
        return "login"

    def stats(self) -> dict[str, Any]:
        """Counters: binds (logins), submits, submit answers by status, receipts, MOs, ..."""
        return {
            **{k: self.counters.get(k, 0) for k in self.COUNTERS},
            "protocol": self.protocol,
            "submit_resp": dict(self.submit_statuses),
            "receipts_pending": sum(len(q) for q in self._pending_receipts.values()),
            "bound": self.bound_sessions(),
        }

    async def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
        """Poll ``predicate()`` until true; False after ``timeout`` seconds (handy in tests)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)

    async def inject_mo(self, source: str, destination: str, text: str, coding: str | int = "auto",
                        split: str = "udh", *, system_id: str | None = None, ref: int | None = None,
                        timeout: float = 5.0) -> list[Any]:
        """Send a mobile-originated message (one operation per part) to a logged-in session
        (of ``system_id`` if given) and wait for the answers: a list with one status per part
        (0 accepted, the protocol's error otherwise, None where none came within
        ``timeout``). :class:`NoReceiverError` when nobody can receive."""
        session = self._receiver_for(system_id)
        if session is None:
            raise NoReceiverError(f"no bound receiver{' for ' + system_id if system_id else ''}")
        ref = ref if ref is not None else random.randint(1, 0xFF)
        parts = self._mo_parts(session, source, destination, text, coding, split, ref)
        futures = []
        for part in parts:
            number = self._free_number(session)
            if number is None:
                raise NoReceiverError("every request number of the session awaits an answer")
            fut = self._loop.create_future()
            session.outstanding[number] = Mo(fut)
            futures.append(fut)
            self._write_mo_part(session, number, part)
            self.counters["mo_sent"] += 1
        log.info("mo injected", extra={"protocol": self.protocol, "source": source,
                                        "destination": destination, "parts": len(parts)})
        await asyncio.wait(futures, timeout=timeout)
        return [f.result() if f.done() and not f.cancelled() else None for f in futures]

    async def unbind(self, system_id: str | None = None, timeout: float = 2.0) -> int:
        """End every logged-in session (of ``system_id``) from the SMSC side; protocols
        without an SMSC-side logout just close the connection. Returns how many."""
        targets = [s for s in self._sessions
                   if s.logged_in and (system_id is None or s.account == system_id)]
        for s in targets:
            self._close(s)
        return len(targets)

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = self._new_session(reader, writer)
        self._sessions.add(session)
        self.counters["connections"] += 1
        log.info("connection accepted", extra={"protocol": self.protocol, "peer": session.peer})
        if session.can_receive:  # no login needed (UCP without accounts): deliver what waits
            self._flush_pending(session.account)
        try:
            await self._converse(session)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not kill the server
            log.exception("connection handler failed", extra={"peer": session.peer})
        finally:
            self._close(session)
            log.info("connection closed", extra={"peer": session.peer, "system_id": session.account})
            self._tasks.discard(task)

    async def _converse_framed(self, session: Session, reader, handle) -> None:
        """The read loop of the STX/ETX protocols: ``reader`` is the codec's push parser,
        ``handle(session, frame_or_error)`` answers each item (returns :data:`CLOSE` to end)."""
        while not session.closed:
            data = await session.reader.read(65536)
            if not data:
                return
            for item in reader.feed(data):
                if handle(session, item) is CLOSE:
                    return
            await self._maybe_drain(session)

    async def _maybe_drain(self, session: Session) -> None:
        if session.transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await session.writer.drain()

    def _close(self, session: Session) -> None:
        if session.closed:
            return
        session.closed = True
        self._sessions.discard(session)
        with contextlib.suppress(Exception):
            session.writer.close()
        for item in session.outstanding.values():
            if isinstance(item, Receipt) and self._running:
                # not acknowledged: keep it for the next receiver
                item.origin = None
                self._pending_receipts.setdefault(item.account, deque()).append(item)
            elif isinstance(item, Mo) and not item.future.done():
                item.future.set_result(None)
        session.outstanding.clear()

    def _logged_in(self, session: Session, account: str | None) -> None:
        session.account = account
        session.logged_in = True
        self.counters["binds"] += 1
        log.info("logged in", extra={"protocol": self.protocol, "peer": session.peer, "system_id": account})
        if session.can_receive:
            self._flush_pending(account)

    def _login(self, session: Session, account: str, password: str, accepted: Any, refused: Any) -> None:
        """Answer a login with ``accepted`` (and start delivering to the session) or, when the
        credentials do not match ``accounts``, with ``refused``."""
        if not self._check_login(account, password):
            self.counters["bind_failures"] += 1
            log.warning("login refused", extra={"peer": session.peer, "system_id": account})
            session.send(refused)
            return
        session.send(accepted)
        self._logged_in(session, account)

    def _check_login(self, account: str, password: str, compare_len: int | None = None) -> bool:
        if self.accounts is None:
            return True
        if account not in self.accounts:
            return False
        expected = self.accounts[account] or ""
        return password == (expected[:compare_len] if compare_len else expected)

    # ------------------------------------------------------------------ submits

    def _judge_submit(self, destination: str):
        """Count a submit and apply the faults: :data:`NO_RESPONSE`, an error code, or None
        (accept)."""
        self.counters["submits"] += 1
        faults = self.faults
        if faults.no_response:
            if faults.no_response > 0:
                faults.no_response -= 1
            self.counters["submits_unanswered"] += 1
            return NO_RESPONSE
        if faults.tps_limit > 0:
            now = self._loop.time()
            if now - self._tps_window >= 1.0:
                self._tps_window, self._tps_count = now, 0
            self._tps_count += 1
            if self._tps_count > faults.tps_limit:
                return self.throttled
        if faults.error_by_prefix:
            return match_prefix(faults.error_by_prefix, destination or "")
        return None

    def _drop_due(self, session: Session) -> bool:
        """True when ``drop_after`` says: close this connection now (after the answer)."""
        faults = self.faults
        if faults.drop_after > 0:
            faults.drop_after -= 1
            if faults.drop_after == 0:
                self.counters["drops"] += 1
                log.info("dropping connection (fault)", extra={"peer": session.peer})
                return True
        return False

    def _unique_stamp(self, destination: str) -> datetime:
        """A submit time, second resolution, never the same twice for the same recipient (by
        its last 7 digits, which Kannel matches receipts on): bumped a second if needed."""
        key = strip_plus(destination)[-7:]
        now = datetime.now().replace(microsecond=0)
        last = self._last_stamp.get(key)
        if last is not None and now <= last:
            now = last + timedelta(seconds=1)
        if len(self._last_stamp) > 100_000:
            self._last_stamp.clear()
        self._last_stamp[key] = now
        return now

    @staticmethod
    def _forced_coding(coding: str | int) -> str | None:
        """An MO's ``coding`` for the GSM-or-UCS2 protocols: None (auto), gsm7 or ucs2."""
        forced = {"auto": None, "gsm7": "gsm7", "ucs2": "ucs2", 0: "gsm7", 8: "ucs2"}
        if coding not in forced:
            raise ValueError(f"MO coding {coding!r} is not auto, gsm7 or ucs2")
        return forced[coding]

    @staticmethod
    def _segment(data) -> Segment:
        """A decoded UCP/CIMD2 user data (``ref``, ``total``, ``seq``, ``payload``, ``dcs``)
        as the reassembler's :class:`Segment`."""
        kind = "single" if data.ref is None else "udh8"
        return Segment(data.ref, data.total, data.seq, data.payload, data.dcs, kind)

    def _receipt_stat(self, destination: str) -> str:
        """The receipt stat the rules give ``destination`` (DELIVRD by default)."""
        rules = self.faults.receipt_rules
        return (match_prefix(rules, destination or "") if rules else None) or "DELIVRD"

    def _accept(self, account: str | None, source: str, destination: str, segment: Segment,
                message_id: str, registered: int) -> None:
        """Reassemble an accepted submit and record the message once complete."""
        key = (account, source, destination)
        if segment.total > 1:
            group = (key, segment.kind, segment.ref, segment.total)
            self._part_ids.setdefault(group, {})[segment.seq] = message_id
            if len(self._part_ids) > 100_000:  # incomplete garbage; keep memory bounded
                self._part_ids.clear()
        complete = self._reassembler.add(key, segment)
        if complete is None:
            return
        if segment.total > 1:
            ids = self._part_ids.pop((key, segment.kind, segment.ref, segment.total), {})
            message_ids = [ids.get(i) for i in range(1, segment.total + 1)]
        else:
            message_ids = [message_id]
        self.counters["messages"] += 1
        self.messages.append({
            "system_id": account, "source": source, "destination": destination,
            "text": join_segments(complete), "data_coding": segment.data_coding,
            "parts": len(complete), "kind": segment.kind, "message_ids": message_ids,
            "registered_delivery": registered, "received_at": time.time(),
        })

    # ------------------------------------------------------------------ receipts

    def _later(self, delay: float, fn, *args) -> None:
        def run():
            self._timers.discard(handle)
            if self._running:
                fn(*args)
        handle = self._loop.call_later(delay, run)
        self._timers.add(handle)

    def _schedule_receipt(self, session: Session, fields: dict[str, Any]) -> None:
        self._later(self.receipt_delay, self._send_receipt, Receipt(session.account, session, fields))

    def _receiver_for(self, account: str | None, prefer: Session | None = None) -> Session | None:
        if prefer is not None and not prefer.closed and prefer.can_receive:
            return prefer
        candidates = [s for s in self._sessions if s.can_receive and not s.closed
                      and (account is None or s.account == account)]
        return random.choice(candidates) if candidates else None

    def _send_receipt(self, receipt: Receipt) -> None:
        session = self._receiver_for(receipt.account, receipt.origin)
        if session is None:
            self._pending_receipts.setdefault(receipt.account, deque()).append(receipt)
            return
        number = self._free_number(session)
        if number is None:  # every request number of this session is waiting for an answer
            self._later(0.05, self._send_receipt, receipt)
            return
        receipt.attempts += 1
        session.outstanding[number] = receipt
        self._write_receipt(session, number, receipt)
        self.counters["receipts_sent"] += 1

    def _flush_pending(self, account: str | None) -> None:
        queue = self._pending_receipts.pop(account, None)
        while queue:
            self._send_receipt(queue.popleft())

    def _answered(self, session: Session, number: Any, status: Any) -> Any:
        """The client answered our request ``number`` with ``status`` (0 / None = OK).
        Returns what that request was (None if unknown)."""
        item = session.outstanding.pop(number, None)
        if isinstance(item, Receipt):
            if not status:
                self.counters["receipts_acked"] += 1
                return item
            self.counters["receipts_failed"] += 1
            log.info("receipt refused", extra={"peer": session.peer, "status": self.status_name(status),
                                               "attempts": item.attempts})
            if item.attempts <= self.receipt_max_retries:
                self.counters["receipts_retried"] += 1
                self._later(self.receipt_retry_delay, self._send_receipt, item)
        elif isinstance(item, Mo):
            self.counters["mo_acked" if not status else "mo_failed"] += 1
            if not item.future.done():
                item.future.set_result(status or 0)
        return item
