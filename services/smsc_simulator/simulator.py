"""An SMSC speaking SMPP 3.4 over TCP, for demos, load tests and our own tests.

Start it with :meth:`SmscSimulator.start`, point an ESME at ``sim.port``; look at what it
received in ``sim.messages`` (reassembled) and ``sim.submits`` (raw submit_sm), inject MOs
with :meth:`SmscSimulator.inject_mo`, script faults with :meth:`SmscSimulator.set_faults`,
and drive it over HTTP through the control port (see :mod:`.control`).

The hot path (submit_sm -> submit_sm_resp) is synchronous: one parse, one encode, a
``transport.write`` without waiting for drain (the handler only awaits drain when the write
buffer grows past 256 KiB), and TCP_NODELAY on every accepted socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from services.protocols.smpp import (
    ESM_DELIVERY_RECEIPT,
    PduError,
    Reassembler,
    SequenceGenerator,
    choose_coding,
    coding_value,
    decode_text,
    encode_pdu,
    encode_text,
    extract_segment,
    format_receipt,
    is_gsm7,
    join_segments,
    make_pdu,
    make_response,
    message_state,
    read_pdu,
    source_ton_npi,
    split_message,
    status_code,
    status_name,
    strip_plus,
)

log = logging.getLogger("switchboard.smsc_simulator")

ESME_ROK = 0x00
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RTHROTTLED = 0x58

_CLOSE = object()
_DRAIN_ABOVE = 256 * 1024
_BIND_KINDS = {"bind_transmitter": "transmitter", "bind_receiver": "receiver",
               "bind_transceiver": "transceiver"}


class NoReceiverError(RuntimeError):
    """No bound receiver/transceiver to deliver a deliver_sm to."""


@dataclass
class Faults:
    """Scripted misbehaviour; change at run time with :meth:`SmscSimulator.set_faults`.

    ``tps_limit``: submit_sm beyond this many per second (all binds together) get
    ESME_RTHROTTLED (0 = off). ``error_by_prefix``: destination prefix -> command_status
    (``{"+999": 0x0B}``; a leading ``+`` is ignored on both sides; names like
    ``"ESME_RINVDSTADR"`` are accepted). ``no_response``: that many submit_sm get no answer at
    all (-1: every one until cleared). ``drop_after``: the connection is closed (no unbind)
    right after answering that many more submit_sm. ``receipt_rules``: destination prefix ->
    receipt stat (``{"+2507": "UNDELIV"}``; default DELIVRD).
    """

    tps_limit: float = 0.0
    error_by_prefix: dict[str, int] = field(default_factory=dict)
    no_response: int = 0
    drop_after: int = 0
    receipt_rules: dict[str, str] = field(default_factory=dict)

    FIELDS = ("tps_limit", "error_by_prefix", "no_response", "drop_after", "receipt_rules")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (same names as the fields); ``ValueError`` on bad values."""
        for key, value in changes.items():
            if key == "tps_limit":
                self.tps_limit = float(value or 0)
            elif key == "error_by_prefix":
                self.error_by_prefix = {str(p): status_code(s) for p, s in (value or {}).items()}
            elif key == "no_response":
                self.no_response = int(value or 0)
            elif key == "drop_after":
                self.drop_after = int(value or 0)
            elif key == "receipt_rules":
                self.receipt_rules = {str(p): str(s).upper() for p, s in (value or {}).items()}
            else:
                raise ValueError(f"unknown fault {key!r} (known: {', '.join(self.FIELDS)})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error_by_prefix"] = {p: status_name(s) for p, s in self.error_by_prefix.items()}
        return d


def _match_prefix(rules: dict[str, Any], address: str):
    """Longest matching prefix rule for ``address`` (``+`` ignored), or None."""
    plain = strip_plus(address)
    best, best_len = None, -1
    for prefix, value in rules.items():
        p = strip_plus(prefix)
        if plain.startswith(p) and len(p) > best_len:
            best, best_len = value, len(p)
    return best


class _Session:
    """One accepted TCP connection."""

    __slots__ = ("reader", "writer", "transport", "peer", "bind_type", "system_id", "seq",
                 "outstanding", "closed", "unbind_future")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.bind_type: str | None = None
        self.system_id: str | None = None
        self.seq = SequenceGenerator()
        self.outstanding: dict[int, Any] = {}
        self.closed = False
        self.unbind_future: asyncio.Future | None = None

    @property
    def can_transmit(self) -> bool:
        return self.bind_type in ("transmitter", "transceiver")

    @property
    def can_receive(self) -> bool:
        return self.bind_type in ("receiver", "transceiver")

    def send(self, pdu) -> None:
        if not self.closed:
            self.transport.write(encode_pdu(pdu))


@dataclass
class _Receipt:
    system_id: str | None
    origin: _Session | None
    fields: dict[str, Any]
    attempts: int = 0


@dataclass
class _Mo:
    future: asyncio.Future


class SmscSimulator:
    """An asyncio SMSC.

    ``accounts``: ``{system_id: password}`` to check binds against (unknown system_id ->
    ESME_RINVSYSID, wrong password -> ESME_RINVPASWD; passwords are compared on their first 8
    characters, the most SMPP 3.4 carries); None accepts any bind. ``id_format``: ``hex``
    (8 zero-padded lower-case hex digits, e.g. ``0001e240``) or ``dec`` (decimal) for the
    submit_sm_resp message_id. ``dlr_id_format``: the id the receipts carry: ``same`` (the
    resp id verbatim), ``hex`` (upper-case hex, no padding) or ``dec`` (decimal) -- so the
    connector's ``dlr_id_format: hex`` (resp hex, receipt decimal) is ``id_format="hex",
    dlr_id_format="dec"`` here. ``receipt_delay``: seconds before a receipt is sent.
    Receipts answered with an error status are sent again after ``receipt_retry_delay``
    seconds, at most ``receipt_max_retries`` times. ``control_port``: port of the HTTP
    control interface (None: none; 0: ephemeral). ``max_records``: how many received
    messages and raw submits are kept (oldest dropped first). ``ssl``: an ``ssl.SSLContext``
    with the server certificate: the SMPP port then speaks TLS.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, control_port: int | None = None,
                 accounts: dict[str, str] | None = None, id_format: str = "hex",
                 dlr_id_format: str = "same", receipt_delay: float = 0.5,
                 receipt_retry_delay: float = 1.0, receipt_max_retries: int = 3,
                 faults: Faults | dict[str, Any] | None = None, smsc_system_id: str = "SWSIM",
                 id_start: int | None = None, max_records: int = 100_000, ssl: Any = None):
        if id_format not in ("hex", "dec"):
            raise ValueError("id_format must be hex or dec")
        if dlr_id_format not in ("same", "hex", "dec"):
            raise ValueError("dlr_id_format must be same, hex or dec")
        self.host = host
        self.port = port
        self.control_port = control_port
        self.accounts = dict(accounts) if accounts is not None else None
        self.id_format = id_format
        self.dlr_id_format = dlr_id_format
        self.receipt_delay = receipt_delay
        self.receipt_retry_delay = receipt_retry_delay
        self.receipt_max_retries = receipt_max_retries
        self.smsc_system_id = smsc_system_id
        self.ssl = ssl  # an ssl.SSLContext: SMPP over TLS (as an SMSC behind stunnel or Kannel's use-ssl)
        if isinstance(faults, Faults):
            self.faults = faults
        else:
            self.faults = Faults()
            self.faults.update(faults or {})
        self._ids = itertools.count(id_start if id_start is not None else random.randint(0x100000, 0x0FFFFFF))
        self.messages: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.submits: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.counters: Counter[str] = Counter()
        self.submit_statuses: Counter[str] = Counter()
        self._reassembler = Reassembler()
        self._part_ids: dict[Any, dict[int, str]] = {}
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task] = set()
        self._pending_receipts: dict[str | None, deque[_Receipt]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._tps_window = 0.0
        self._tps_count = 0
        self._server: asyncio.base_events.Server | None = None
        self._control = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._handlers = {
            "submit_sm": self._on_submit,
            "bind_transmitter": self._on_bind,
            "bind_receiver": self._on_bind,
            "bind_transceiver": self._on_bind,
            "enquire_link": self._on_enquire_link,
            "unbind": self._on_unbind,
            "deliver_sm_resp": self._on_deliver_resp,
            "generic_nack": self._on_deliver_resp,
            "unbind_resp": self._on_unbind_resp,
            "enquire_link_resp": lambda s, p: None,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> SmscSimulator:
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
        log.info("smsc simulator listening", extra={"host": self.host, "port": self.port,
                                                     "control_port": self.control_port})
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
        log.info("smsc simulator stopped")

    async def __aenter__(self) -> SmscSimulator:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ------------------------------------------------------------------ public helpers

    def set_faults(self, clear: bool = False, **changes: Any) -> Faults:
        """Change faults (see :class:`Faults`); ``clear=True`` resets all first."""
        if clear:
            self.faults = Faults()
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
        return [{"peer": s.peer, "bind": s.bind_type, "system_id": s.system_id}
                for s in self._sessions if s.bind_type]

    def stats(self) -> dict[str, Any]:
        """Counters: binds, submits, submit responses by status, receipts, MOs, ..."""
        return {
            **{k: self.counters.get(k, 0) for k in (
                "connections", "binds", "bind_failures", "unbinds", "submits",
                "submits_unanswered", "receipts_sent", "receipts_acked", "receipts_failed",
                "receipts_retried", "mo_sent", "mo_acked", "mo_failed", "messages",
                "generic_nacks", "enquire_links", "drops")},
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
                        timeout: float = 5.0) -> list[int | None]:
        """Send a mobile-originated message as deliver_sm (one per part) to a bound
        receiver/transceiver (of ``system_id`` if given) and wait for the answers.

        ``coding``: ``auto`` (gsm7, else ucs2), ``gsm7``, ``latin1``, ``ucs2`` or an int.
        ``split``: ``udh`` (8-bit ref), ``udh16``, ``sar`` or ``payload``. Returns the
        deliver_sm_resp command_status of each part (None where none came within
        ``timeout``). Raises :class:`NoReceiverError` when nobody can receive.
        """
        if coding == "auto":
            dc, _ = choose_coding(text, "gsm7")
        else:
            dc = coding_value(coding)
        parts = split_message(text, dc, split, ref if ref is not None else random.randint(1, 0xFFFF))
        session = self._receiver_for(system_id)
        if session is None:
            raise NoReceiverError(f"no bound receiver{' for ' + system_id if system_id else ''}")
        src_ton, src_npi, src = source_ton_npi(source)
        dst_ton, dst_npi, dst = source_ton_npi(destination)
        futures = []
        for part in parts:
            seq = session.seq.next_sequence()
            fut = self._loop.create_future()
            session.outstanding[seq] = _Mo(fut)
            futures.append(fut)
            session.send(make_pdu(
                "deliver_sm", sequence=seq, service_type="", source_addr_ton=src_ton,
                source_addr_npi=src_npi, source_addr=src, dest_addr_ton=dst_ton,
                dest_addr_npi=dst_npi, destination_addr=dst, **part.pdu_fields()))
            self.counters["mo_sent"] += 1
        log.info("mo injected", extra={"source": src, "destination": dst, "parts": len(parts),
                                        "split": split, "data_coding": dc})
        await asyncio.wait(futures, timeout=timeout)
        return [f.result() if f.done() and not f.cancelled() else None for f in futures]

    async def unbind(self, system_id: str | None = None, timeout: float = 2.0) -> int:
        """Send unbind from the SMSC side to every bound session (of ``system_id``), wait
        for unbind_resp (at most ``timeout``) and close them. Returns how many."""
        targets = [s for s in self._sessions
                   if s.bind_type and (system_id is None or s.system_id == system_id)]
        waits = []
        for s in targets:
            seq = s.seq.next_sequence()
            s.unbind_future = self._loop.create_future()
            s.outstanding[seq] = "unbind"
            s.send(make_pdu("unbind", sequence=seq))
            waits.append(s.unbind_future)
            log.info("unbind sent", extra={"peer": s.peer, "system_id": s.system_id})
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        for s in targets:
            self._close(s)
        return len(targets)

    # ------------------------------------------------------------------ connection loop

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = _Session(reader, writer)
        self._sessions.add(session)
        self.counters["connections"] += 1
        log.info("connection accepted", extra={"peer": session.peer})
        handlers = self._handlers
        try:
            while not session.closed:
                try:
                    pdu = await read_pdu(reader)
                except PduError as exc:
                    self.counters["generic_nacks"] += 1
                    session.send(make_pdu("generic_nack", sequence=exc.sequence or 0, status=exc.status))
                    log.warning("bad pdu", extra={"peer": session.peer, "error": str(exc)})
                    if exc.sequence is None:
                        break
                    continue
                handler = handlers.get(pdu.command)
                if handler is None:
                    self._on_other(session, pdu)
                elif handler(session, pdu) is _CLOSE:
                    break
                if session.transport.get_write_buffer_size() > _DRAIN_ABOVE:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not kill the server
            log.exception("connection handler failed", extra={"peer": session.peer})
        finally:
            self._close(session)
            log.info("connection closed", extra={"peer": session.peer, "system_id": session.system_id})
            self._tasks.discard(task)

    def _close(self, session: _Session) -> None:
        if session.closed:
            return
        session.closed = True
        self._sessions.discard(session)
        with contextlib.suppress(Exception):
            session.writer.close()
        for item in session.outstanding.values():
            if isinstance(item, _Receipt) and self._running:
                # not acknowledged: keep it for the next receiver
                item.origin = None
                self._pending_receipts.setdefault(item.system_id, deque()).append(item)
            elif isinstance(item, _Mo) and not item.future.done():
                item.future.set_result(None)
        session.outstanding.clear()
        if session.unbind_future is not None and not session.unbind_future.done():
            session.unbind_future.set_result(None)

    # ------------------------------------------------------------------ PDU handlers

    def _on_bind(self, s: _Session, pdu) -> None:
        kind = _BIND_KINDS[pdu.command]
        system_id = pdu.system_id or ""
        if s.bind_type is not None:
            status = ESME_RALYBND
        elif self.accounts is None:
            status = ESME_ROK
        elif system_id not in self.accounts:
            status = ESME_RINVSYSID
        elif (pdu.password or "") != (self.accounts[system_id] or "")[:8]:
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        s.send(make_pdu(pdu.command + "_resp", sequence=pdu.sequence, status=status,
                        system_id=self.smsc_system_id))
        extra = {"peer": s.peer, "system_id": system_id, "bind": kind, "status": status_name(status)}
        if status:
            self.counters["bind_failures"] += 1
            log.warning("bind refused", extra=extra)
            return
        s.bind_type = kind
        s.system_id = system_id
        self.counters["binds"] += 1
        log.info("bound", extra=extra)
        if s.can_receive:
            self._flush_pending(system_id)

    def _on_enquire_link(self, s: _Session, pdu) -> None:
        self.counters["enquire_links"] += 1
        s.send(make_response(pdu))

    def _on_unbind(self, s: _Session, pdu):
        self.counters["unbinds"] += 1
        s.send(make_response(pdu))
        log.info("unbind received", extra={"peer": s.peer, "system_id": s.system_id})
        return _CLOSE

    def _on_unbind_resp(self, s: _Session, pdu):
        s.outstanding.pop(pdu.sequence, None)
        if s.unbind_future is not None and not s.unbind_future.done():
            s.unbind_future.set_result(pdu.status)
        return _CLOSE

    def _on_other(self, s: _Session, pdu) -> None:
        if pdu.is_response():
            return  # a response we did not ask for: ignore
        self.counters["generic_nacks"] += 1
        s.send(make_pdu("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))

    def _on_submit(self, s: _Session, pdu):
        counters = self.counters
        counters["submits"] += 1
        if not s.can_transmit:
            self._answer_submit(s, pdu, ESME_RINVBNDSTS, None)
            return None
        faults = self.faults
        if faults.no_response:
            if faults.no_response > 0:
                faults.no_response -= 1
            counters["submits_unanswered"] += 1
            self._record_submit(s, pdu, None, None)
            return None
        status = ESME_ROK
        if faults.tps_limit > 0:
            now = self._loop.time()
            if now - self._tps_window >= 1.0:
                self._tps_window, self._tps_count = now, 0
            self._tps_count += 1
            if self._tps_count > faults.tps_limit:
                status = ESME_RTHROTTLED
        if not status and faults.error_by_prefix:
            status = _match_prefix(faults.error_by_prefix, pdu.destination_addr or "") or ESME_ROK
        message_id = None
        if not status:
            n = next(self._ids)
            message_id = format(n, "08x") if self.id_format == "hex" else str(n)
        self._answer_submit(s, pdu, status, message_id)
        if message_id is not None:
            self._accept(s, pdu, message_id, n)
        if faults.drop_after > 0:
            faults.drop_after -= 1
            if faults.drop_after == 0:
                counters["drops"] += 1
                log.info("dropping connection (fault)", extra={"peer": s.peer})
                return _CLOSE
        return None

    def _answer_submit(self, s: _Session, pdu, status: int, message_id: str | None) -> None:
        if message_id is None:
            resp = make_pdu("submit_sm_resp", sequence=pdu.sequence, status=status)
        else:
            resp = make_pdu("submit_sm_resp", sequence=pdu.sequence, status=status, message_id=message_id)
        s.send(resp)
        self.submit_statuses[status_name(status)] += 1
        self._record_submit(s, pdu, status, message_id)

    def _record_submit(self, s: _Session, pdu, status: int | None, message_id: str | None) -> None:
        self.submits.append({
            "system_id": s.system_id, "sequence": pdu.sequence,
            "source": pdu.source_addr, "source_ton": pdu.source_addr_ton, "source_npi": pdu.source_addr_npi,
            "destination": pdu.destination_addr, "dest_ton": pdu.dest_addr_ton, "dest_npi": pdu.dest_addr_npi,
            "esm_class": pdu.esm_class or 0, "data_coding": pdu.data_coding or 0,
            "registered_delivery": pdu.registered_delivery or 0,
            "short_message": pdu.short_message or b"", "message_payload": pdu.message_payload,
            "sar_msg_ref_num": pdu.sar_msg_ref_num, "sar_total_segments": pdu.sar_total_segments,
            "sar_segment_seqnum": pdu.sar_segment_seqnum,
            "status": None if status is None else status_name(status), "message_id": message_id,
            "at": time.monotonic(),
        })

    def _accept(self, s: _Session, pdu, message_id: str, n: int) -> None:
        """Reassemble, record and schedule a receipt for an accepted submit_sm."""
        segment = extract_segment(pdu)
        key = (s.system_id, pdu.source_addr, pdu.destination_addr)
        if segment.total > 1:
            group = (key, segment.kind, segment.ref, segment.total)
            ids = self._part_ids.setdefault(group, {})
            ids[segment.seq] = message_id
            if len(self._part_ids) > 100_000:  # incomplete garbage; keep memory bounded
                self._part_ids.clear()
        complete = self._reassembler.add(key, segment)
        if complete is not None:
            if segment.total > 1:
                ids = self._part_ids.pop((key, segment.kind, segment.ref, segment.total), {})
                message_ids = [ids.get(i) for i in range(1, segment.total + 1)]
            else:
                message_ids = [message_id]
            self.counters["messages"] += 1
            self.messages.append({
                "system_id": s.system_id, "source": pdu.source_addr, "destination": pdu.destination_addr,
                "text": join_segments(complete), "data_coding": segment.data_coding,
                "parts": len(complete), "kind": segment.kind, "message_ids": message_ids,
                "registered_delivery": pdu.registered_delivery or 0, "received_at": time.time(),
            })
        rd = (pdu.registered_delivery or 0) & 0x03
        if not rd:
            return
        stat = _match_prefix(self.faults.receipt_rules, pdu.destination_addr or "") if \
            self.faults.receipt_rules else None
        stat = stat or "DELIVRD"
        if rd == 2 and stat == "DELIVRD":
            return  # receipt on failure only
        if self.dlr_id_format == "hex":
            receipt_id = format(n, "X")
        elif self.dlr_id_format == "dec":
            receipt_id = str(n)
        else:
            receipt_id = message_id
        text = format_receipt(receipt_id, stat, 0 if stat == "DELIVRD" else 1,
                              decode_text(segment.payload, segment.data_coding))
        if not is_gsm7(text):
            text = "".join(ch if is_gsm7(ch) else "?" for ch in text)
        ton, npi, _ = source_ton_npi(pdu.destination_addr or "")
        receipt = _Receipt(s.system_id, s, {
            "service_type": "", "source_addr_ton": ton, "source_addr_npi": npi,
            "source_addr": pdu.destination_addr or "", "dest_addr_ton": pdu.source_addr_ton or 0,
            "dest_addr_npi": pdu.source_addr_npi or 0, "destination_addr": pdu.source_addr or "",
            "esm_class": ESM_DELIVERY_RECEIPT, "data_coding": 0,
            "short_message": encode_text(text, 0),
            "receipted_message_id": receipt_id, "message_state": message_state(stat),
        })
        self._later(self.receipt_delay, self._send_receipt, receipt)

    # ------------------------------------------------------------------ receipts

    def _later(self, delay: float, fn, *args) -> None:
        def run():
            self._timers.discard(handle)
            if self._running:
                fn(*args)
        handle = self._loop.call_later(delay, run)
        self._timers.add(handle)

    def _receiver_for(self, system_id: str | None, prefer: _Session | None = None) -> _Session | None:
        if prefer is not None and not prefer.closed and prefer.can_receive:
            return prefer
        candidates = [s for s in self._sessions if s.can_receive and not s.closed
                      and (system_id is None or s.system_id == system_id)]
        return random.choice(candidates) if candidates else None

    def _send_receipt(self, receipt: _Receipt) -> None:
        session = self._receiver_for(receipt.system_id, receipt.origin)
        if session is None:
            self._pending_receipts.setdefault(receipt.system_id, deque()).append(receipt)
            return
        seq = session.seq.next_sequence()
        session.outstanding[seq] = receipt
        receipt.attempts += 1
        session.send(make_pdu("deliver_sm", sequence=seq, **receipt.fields))
        self.counters["receipts_sent"] += 1

    def _flush_pending(self, system_id: str | None) -> None:
        queue = self._pending_receipts.pop(system_id, None)
        while queue:
            self._send_receipt(queue.popleft())

    def _on_deliver_resp(self, s: _Session, pdu) -> None:
        item = s.outstanding.pop(pdu.sequence, None)
        if item is None:
            return
        status = pdu.status or 0
        if isinstance(item, _Receipt):
            if status == ESME_ROK:
                self.counters["receipts_acked"] += 1
                return
            self.counters["receipts_failed"] += 1
            log.info("receipt refused", extra={"peer": s.peer, "status": status_name(status),
                                               "attempts": item.attempts})
            if item.attempts <= self.receipt_max_retries:
                self.counters["receipts_retried"] += 1
                self._later(self.receipt_retry_delay, self._send_receipt, item)
        elif isinstance(item, _Mo):
            self.counters["mo_acked" if status == ESME_ROK else "mo_failed"] += 1
            if not item.future.done():
                item.future.set_result(status)
        elif item == "unbind":
            if s.unbind_future is not None and not s.unbind_future.done():
                s.unbind_future.set_result(status)
