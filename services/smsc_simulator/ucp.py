"""An SMSC speaking UCP/EMI over TCP, as Kannel's ``emi`` driver expects one to.

* O/60 login: ACK, or NACK 07 when ``accounts`` is set and the OAdC/password do not match.
  Without ``accounts`` a client that does not log in (IP-authenticated) may submit too.
* O/31 alert: ACK (``A//``).
* O/51 submit: ACK ``A//<AdC>:<SCTS>`` with an SCTS never repeated for the same recipient
  (Kannel matches the OT 53 on SCTS and the last 7 digits of the recipient); later an O/53
  with that SCTS, ``OAdC`` = the recipient and ``Dst`` 0 delivered / 1 buffered / 2 not
  delivered, when ``NRq=1`` and ``NT`` asks for that outcome (NT 1 delivered, 2 failed, 4
  buffered; empty NT means 3).
* MO: O/52 per part (GSM as MT 3, else MT 4 UCS2 with XSer DCS 08; parts with XSer UDH).
* Faults (:class:`.base.Faults`): ``tps_limit`` -> NACK 04 (UCP has no throttling code; 04
  is "operation not allowed"), ``error_by_prefix`` -> NACK with that EC, ``no_response``,
  ``drop_after``. A frame with a bad checksum gets NACK 01, other bad frames NACK 02 (when
  their TRN and OT can be read), unknown operations NACK 03.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.protocols import ucp
from services.protocols.ucp import Frame, UcpError

from .base import CLOSE, NO_RESPONSE, Receipt, Session, SimulatorBase

log = logging.getLogger("switchboard.smsc_simulator.ucp")

EC_THROTTLED = "04"

#: receipt stat -> (Dst, Rsn) of the OT 53
_NOTIFICATIONS = {
    "DELIVRD": ("0", "000"), "ENROUTE": ("1", "000"), "ACCEPTD": ("1", "000"),
    "UNDELIV": ("2", "000"), "REJECTD": ("2", "001"), "EXPIRED": ("2", "108"),
    "DELETED": ("2", "108"), "UNKNOWN": ("2", "000"),
}
#: NT bit that asks for each Dst
_NT_BITS = {"0": 1, "2": 2, "1": 4}
_WORDS = {"0": "delivered", "1": "buffered", "2": "not delivered"}


class _UcpSession(Session):
    numbers_in_cycle = 100

    def __init__(self, reader, writer, logged_in: bool):
        super().__init__(reader, writer)
        self.parser = ucp.frame_reader()
        self.logged_in = logged_in
        self._trn = -1

    def next_number(self) -> int:
        self._trn = (self._trn + 1) % 100
        return self._trn

    def send(self, frame: Frame) -> None:
        self.write(ucp.encode_frame(frame))


class UcpSimulator(SimulatorBase):
    """The UCP/EMI SMSC; constructor arguments are :class:`.base.SimulatorBase`'s."""

    protocol = "ucp"
    throttled = EC_THROTTLED

    @staticmethod
    def parse_error(value: Any) -> str:
        """An EMI error code: ``6``, ``"06"`` -> ``"06"``."""
        text = str(value).strip()
        if not text.isdigit() or len(text) > 2:
            raise ValueError(f"UCP error code {value!r} is not 1-2 digits (e.g. 06)")
        return f"{int(text):02d}"

    @staticmethod
    def error_name(code: Any) -> str:
        return str(code)

    def status_name(self, status: Any) -> str:
        return "ACK" if not status else f"NACK {status} ({ucp.ERRORS.get(status, 'unknown')})"

    def _new_session(self, reader, writer) -> _UcpSession:
        return _UcpSession(reader, writer, logged_in=self.accounts is None)

    async def _converse(self, session: _UcpSession) -> None:
        await self._converse_framed(session, session.parser, self._handle)

    def _handle(self, s: _UcpSession, item: Frame | UcpError):
        if isinstance(item, UcpError):
            self.counters["generic_nacks"] += 1
            log.warning("bad frame", extra={"peer": s.peer, "error": str(item)})
            if item.trn is not None and item.ot is not None and item.kind == "O":
                s.send(ucp.nack(item, item.ec))
            return None
        if item.is_result:
            try:
                result = ucp.parse_result(item)
            except UcpError as exc:
                log.warning("bad result", extra={"peer": s.peer, "error": str(exc)})
                return None
            self._answered(s, item.trn, 0 if result.ok else result.ec)
            return None
        handler = self._operations.get(item.ot)
        if handler is None:
            self.counters["generic_nacks"] += 1
            s.send(ucp.nack(item, ucp.EC_NOT_SUPPORTED))
            return None
        try:
            return handler(self, s, item)
        except UcpError as exc:  # a field the operation cannot use
            self.counters["generic_nacks"] += 1
            log.warning("bad operation", extra={"peer": s.peer, "ot": item.ot, "error": str(exc)})
            s.send(ucp.nack(item, exc.ec, str(exc)[:60].replace("/", " ")))
            return None

    def _on_login(self, s: _UcpSession, frame: Frame):
        user, password = ucp.parse_login(frame)
        self._login(s, user, password, ucp.ack(frame), ucp.nack(frame, ucp.EC_AUTHENTICATION))

    def _on_alert(self, s: _UcpSession, frame: Frame):
        self.counters["enquire_links"] += 1
        s.send(ucp.ack(frame))
        return None

    def _on_submit(self, s: _UcpSession, frame: Frame):
        if not s.logged_in:
            self.counters["submits"] += 1
            s.send(ucp.nack(frame, ucp.EC_AUTHENTICATION))
            self._record_submit(s, frame, {}, "N/07", None)
            return None
        fields = ucp.fields_5x(frame)
        destination = fields["AdC"]
        verdict = self._judge_submit(destination)
        if verdict is NO_RESPONSE:
            self._record_submit(s, frame, fields, None, None)
            return None
        if verdict is None:
            data = ucp.read_user_data(fields)  # UcpError -> NACK 02 in _handle
            scts = ucp.format_scts(self._unique_stamp(destination))
            message_id = f"{destination}:{scts}"
            s.send(ucp.ack(frame, sm=message_id))
            self.submit_statuses["ACK"] += 1
            self._record_submit(s, frame, fields, "ACK", message_id)
            self._accept_submit(s, fields, data, scts, message_id)
        else:
            s.send(ucp.nack(frame, verdict, ucp.ERRORS.get(verdict, "")))
            self.submit_statuses[f"N/{verdict}"] += 1
            self._record_submit(s, frame, fields, f"N/{verdict}", None)
        return CLOSE if self._drop_due(s) else None

    _operations = {ucp.OT_LOGIN: _on_login, ucp.OT_ALERT: _on_alert, ucp.OT_SUBMIT: _on_submit}

    def _record_submit(self, s: _UcpSession, frame: Frame, fields: dict[str, str], status: str | None,
                       message_id: str | None) -> None:
        self.submits.append({
            "system_id": s.account, "sequence": frame.trn, "destination": fields.get("AdC"),
            "source": ucp.decode_oadc(fields.get("OAdC", ""), fields.get("OTOA", "")),
            "fields": {k: v for k, v in fields.items() if v}, "status": status, "message_id": message_id,
        })

    def _accept_submit(self, s: _UcpSession, fields: dict[str, str], data: ucp.UserData, scts: str,
                       message_id: str) -> None:
        destination = fields["AdC"]
        source = ucp.decode_oadc(fields["OAdC"], fields["OTOA"])
        segment = self._segment(data)
        wants = int(fields["NT"] or "3") if fields["NRq"] == "1" else 0
        self._accept(s.account, source, destination, segment, message_id, 1 if wants else 0)
        dst, rsn = _NOTIFICATIONS.get(self._receipt_stat(destination), ("2", "000"))
        if not wants & _NT_BITS[dst]:
            return
        self._schedule_receipt(s, {"adc": fields["NAdC"] or fields["OAdC"], "handset": destination,
                                   "scts": scts, "dst": dst, "rsn": rsn})

    def _write_receipt(self, session: _UcpSession, number: int, receipt: Receipt) -> None:
        f = receipt.fields
        text = f"Message for {f['handset']}, with identification {f['scts']} has been {_WORDS[f['dst']]}"
        dscts = ucp.format_scts(datetime.now())
        session.send(ucp.notification(number, f["adc"], f["handset"], f["scts"], int(f["dst"]),
                                      f["rsn"], dscts, text))

    def _mo_parts(self, session, source, destination, text, coding, split, ref) -> list[Any]:
        scts = ucp.format_scts(self._unique_stamp(destination))
        return [(destination, source, scts, part) for part in ucp.message_fields(text, ref, self._forced_coding(coding))]

    def _write_mo_part(self, session: _UcpSession, number: int, part) -> None:
        destination, source, scts, fields = part
        session.send(ucp.mo(number, destination, source, scts, fields))
