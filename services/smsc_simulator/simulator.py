"""An SMSC speaking SMPP 3.4 over TCP, for demos, load tests and our own tests.

Start it with :meth:`SmscSimulator.start`, point an ESME at ``sim.port``; look at what it
received in ``sim.messages`` (reassembled) and ``sim.submits`` (raw submit_sm), inject MOs
with :meth:`SmscSimulator.inject_mo`, script faults with :meth:`SmscSimulator.set_faults`,
and drive it over HTTP through the control port (see :mod:`.control`). What does not depend
on SMPP (faults, records, receipts, MO injection, the control port) lives in :mod:`.base`
and is shared with the UCP and CIMD2 simulators.

The hot path (submit_sm -> submit_sm_resp) is synchronous: one parse, one encode, a
``transport.write`` without waiting for drain (the handler only awaits drain when the write
buffer grows past 256 KiB), and TCP_NODELAY on every accepted socket.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import Any

from services.protocols.smpp import (
    ESM_DELIVERY_RECEIPT,
    PduError,
    SequenceGenerator,
    choose_coding,
    coding_value,
    decode_text,
    encode_pdu,
    encode_text,
    extract_segment,
    format_receipt,
    is_gsm7,
    make_pdu,
    make_response,
    message_state,
    read_pdu,
    source_ton_npi,
    split_message,
    status_code,
    status_name,
)

from .base import CLOSE, NO_RESPONSE, Faults, NoReceiverError, Receipt, Session, SimulatorBase

__all__ = ["Faults", "NoReceiverError", "SmscSimulator"]

log = logging.getLogger("switchboard.smsc_simulator")

ESME_ROK = 0x00
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RTHROTTLED = 0x58

_BIND_KINDS = {"bind_transmitter": "transmitter", "bind_receiver": "receiver",
               "bind_transceiver": "transceiver"}


class _Session(Session):
    """An SMPP connection: its bind type and its own sequence numbers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        super().__init__(reader, writer)
        self.bind_type: str | None = None
        self.seq = SequenceGenerator()
        self.unbind_future: asyncio.Future | None = None

    @property
    def can_transmit(self) -> bool:
        return self.bind_type in ("transmitter", "transceiver")

    @property
    def can_receive(self) -> bool:
        return self.bind_type in ("receiver", "transceiver")

    def next_number(self) -> int:
        return self.seq.next_sequence()

    def send(self, pdu) -> None:
        self.write(encode_pdu(pdu))


class SmscSimulator(SimulatorBase):
    """An asyncio SMSC speaking SMPP 3.4.

    ``accounts``: ``{system_id: password}`` to check binds against (unknown system_id ->
    ESME_RINVSYSID, wrong password -> ESME_RINVPASWD; passwords are compared on their first 8
    characters, the most SMPP 3.4 carries); None accepts any bind. ``id_format``: ``hex``
    (8 zero-padded lower-case hex digits, e.g. ``0001e240``) or ``dec`` (decimal) for the
    submit_sm_resp message_id. ``dlr_id_format``: the id the receipts carry: ``same`` (the
    resp id verbatim), ``hex`` (upper-case hex, no padding) or ``dec`` (decimal) -- so the
    connector's ``dlr_id_format: hex`` (resp hex, receipt decimal) is ``id_format="hex",
    dlr_id_format="dec"`` here. The other arguments are :class:`.base.SimulatorBase`'s.
    """

    protocol = "smpp"
    throttled = ESME_RTHROTTLED

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
        super().__init__(host, port, control_port=control_port, accounts=accounts,
                         receipt_delay=receipt_delay, receipt_retry_delay=receipt_retry_delay,
                         receipt_max_retries=receipt_max_retries, faults=faults, max_records=max_records, ssl=ssl)
        self.id_format = id_format
        self.dlr_id_format = dlr_id_format
        self.smsc_system_id = smsc_system_id
        self._ids = itertools.count(id_start if id_start is not None else random.randint(0x100000, 0x0FFFFFF))
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

    parse_error = staticmethod(status_code)
    error_name = staticmethod(status_name)

    def status_name(self, status: Any) -> str:
        return status_name(status)

    def _new_session(self, reader, writer) -> _Session:
        return _Session(reader, writer)

    def _bind_name(self, session: _Session) -> str:
        return session.bind_type or ""

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
        return await super().inject_mo(source, destination, text, coding, split, system_id=system_id,
                                       ref=ref if ref is not None else random.randint(1, 0xFFFF),
                                       timeout=timeout)

    def _mo_parts(self, session: _Session, source, destination, text, coding, split, ref) -> list[dict]:
        dc = choose_coding(text, "gsm7")[0] if coding == "auto" else coding_value(coding)
        src_ton, src_npi, src = source_ton_npi(source)
        dst_ton, dst_npi, dst = source_ton_npi(destination)
        return [{"service_type": "", "source_addr_ton": src_ton, "source_addr_npi": src_npi,
                 "source_addr": src, "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi,
                 "destination_addr": dst, **part.pdu_fields()}
                for part in split_message(text, dc, split, ref)]

    def _write_mo_part(self, session: _Session, number: int, part: dict) -> None:
        session.send(make_pdu("deliver_sm", sequence=number, **part))

    async def unbind(self, system_id: str | None = None, timeout: float = 2.0) -> int:
        """Send unbind from the SMSC side to every bound session (of ``system_id``), wait
        for unbind_resp (at most ``timeout``) and close them. Returns how many."""
        targets = [s for s in self._sessions
                   if s.bind_type and (system_id is None or s.account == system_id)]
        waits = []
        for s in targets:
            seq = s.seq.next_sequence()
            s.unbind_future = self._loop.create_future()
            s.outstanding[seq] = "unbind"
            s.send(make_pdu("unbind", sequence=seq))
            waits.append(s.unbind_future)
            log.info("unbind sent", extra={"peer": s.peer, "system_id": s.account})
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        for s in targets:
            self._close(s)
        return len(targets)

    # ------------------------------------------------------------------ connection loop

    async def _converse(self, session: _Session) -> None:
        handlers = self._handlers
        reader = session.reader
        while not session.closed:
            try:
                pdu = await read_pdu(reader)
            except PduError as exc:
                self.counters["generic_nacks"] += 1
                session.send(make_pdu("generic_nack", sequence=exc.sequence or 0, status=exc.status))
                log.warning("bad pdu", extra={"peer": session.peer, "error": str(exc)})
                if exc.sequence is None:
                    return
                continue
            handler = handlers.get(pdu.command)
            if handler is None:
                self._on_other(session, pdu)
            elif handler(session, pdu) is CLOSE:
                return
            await self._maybe_drain(session)

    def _close(self, session: _Session) -> None:
        super()._close(session)
        if session.unbind_future is not None and not session.unbind_future.done():
            session.unbind_future.set_result(None)

    # ------------------------------------------------------------------ PDU handlers

    def _on_bind(self, s: _Session, pdu) -> None:
        kind = _BIND_KINDS[pdu.command]
        system_id = pdu.system_id or ""
        if s.bind_type is not None:
            status = ESME_RALYBND
        elif self.accounts is not None and system_id not in self.accounts:
            status = ESME_RINVSYSID
        elif not self._check_login(system_id, pdu.password or "", compare_len=8):
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
        self._logged_in(s, system_id)

    def _on_enquire_link(self, s: _Session, pdu) -> None:
        self.counters["enquire_links"] += 1
        s.send(make_response(pdu))

    def _on_unbind(self, s: _Session, pdu):
        self.counters["unbinds"] += 1
        s.send(make_response(pdu))
        log.info("unbind received", extra={"peer": s.peer, "system_id": s.account})
        return CLOSE

    def _on_unbind_resp(self, s: _Session, pdu):
        s.outstanding.pop(pdu.sequence, None)
        if s.unbind_future is not None and not s.unbind_future.done():
            s.unbind_future.set_result(pdu.status)
        return CLOSE

    def _on_other(self, s: _Session, pdu) -> None:
        if pdu.is_response():
            return  # a response we did not ask for: ignore
        self.counters["generic_nacks"] += 1
        s.send(make_pdu("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))

    def _on_submit(self, s: _Session, pdu):
        if not s.can_transmit:
            self.counters["submits"] += 1
            self._answer_submit(s, pdu, ESME_RINVBNDSTS, None)
            return None
        verdict = self._judge_submit(pdu.destination_addr or "")
        if verdict is NO_RESPONSE:
            self._record_submit(s, pdu, None, None)
            return None
        status = verdict or ESME_ROK
        message_id = None
        if not status:
            n = next(self._ids)
            message_id = format(n, "08x") if self.id_format == "hex" else str(n)
        self._answer_submit(s, pdu, status, message_id)
        if message_id is not None:
            self._accept_submit(s, pdu, message_id, n)
        return CLOSE if self._drop_due(s) else None

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
            "system_id": s.account, "sequence": pdu.sequence,
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

    def _accept_submit(self, s: _Session, pdu, message_id: str, n: int) -> None:
        """Reassemble, record and schedule a receipt for an accepted submit_sm."""
        segment = extract_segment(pdu)
        self._accept(s.account, pdu.source_addr, pdu.destination_addr, segment, message_id,
                     pdu.registered_delivery or 0)
        rd = (pdu.registered_delivery or 0) & 0x03
        if not rd:
            return
        stat = self._receipt_stat(pdu.destination_addr or "")
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
        self._schedule_receipt(s, {
            "service_type": "", "source_addr_ton": ton, "source_addr_npi": npi,
            "source_addr": pdu.destination_addr or "", "dest_addr_ton": pdu.source_addr_ton or 0,
            "dest_addr_npi": pdu.source_addr_npi or 0, "destination_addr": pdu.source_addr or "",
            "esm_class": ESM_DELIVERY_RECEIPT, "data_coding": 0,
            "short_message": encode_text(text, 0),
            "receipted_message_id": receipt_id, "message_state": message_state(stat),
        })

    # ------------------------------------------------------------------ receipts

    def _write_receipt(self, session: _Session, number: int, receipt: Receipt) -> None:
        session.send(make_pdu("deliver_sm", sequence=number, **receipt.fields))

    def _on_deliver_resp(self, s: _Session, pdu) -> None:
        item = self._answered(s, pdu.sequence, pdu.status or 0)
        if item == "unbind" and s.unbind_future is not None and not s.unbind_future.done():
            s.unbind_future.set_result(pdu.status or 0)
