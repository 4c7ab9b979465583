"""An SMSC speaking CIMD2 over TCP, as Kannel's ``cimd2`` driver expects one to.

* 01 login: 51, or 51 with ``900:100`` when ``accounts`` is set and 010/011 do not match.
  No window is granted (stop-and-wait, as Kannel and ``test_cimd2`` do).
* 02 logout: 52, then the connection is closed. 40 alive: 90.
* 03 submit: 53 with ``021`` and a ``060`` never repeated for the same recipient (Kannel
  matches the 23 on ``060`` and the last 7 digits of ``021``); later a 23 with the same
  ``021``/``060`` when ``056`` asks for that outcome (8 delivered, 4 failed, 2 expired,
  1 in process). No 021: ``900:300``; two or more: ``900:301`` (as ``test_cimd2``).
* MO: 20 per part (033 escaped GSM or 034 + 030:8, 032 UDH for parts), even packet numbers.
* Faults (:class:`.base.Faults`): ``tps_limit`` -> ``900:10`` (temporary congestion),
  ``error_by_prefix`` -> ``900:<code>``, ``no_response``, ``drop_after``. An unreadable
  packet gets NACK 99 (when its number can be read), an unknown opcode 98 with ``900:1``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.protocols import cimd2
from services.protocols.cimd2 import Cimd2Error, Packet

from .base import CLOSE, NO_RESPONSE, Receipt, Session, SimulatorBase

log = logging.getLogger("switchboard.smsc_simulator.cimd2")

#: receipt stat -> 061 status code of the 23
_REPORTS = {"DELIVRD": 4, "ENROUTE": 1, "ACCEPTD": 1, "EXPIRED": 2, "UNDELIV": 3, "REJECTD": 3,
            "DELETED": 8, "UNKNOWN": 3}
#: 056 bit that asks for each 061 code
_WANT_BITS = {4: 8, 1: 1, 2: 2, 3: 4, 8: 4}


class _Cimd2Session(Session):
    numbers_in_cycle = 128

    def __init__(self, reader, writer):
        super().__init__(reader, writer)
        self.parser = cimd2.packet_reader()
        self._numbers = cimd2.PacketNumbers(odd=False)

    def next_number(self) -> int:
        return self._numbers.next()

    def send(self, packet: Packet) -> None:
        self.write(cimd2.encode_packet(packet))


class Cimd2Simulator(SimulatorBase):
    """The CIMD2 SMSC; constructor arguments are :class:`.base.SimulatorBase`'s."""

    protocol = "cimd2"
    throttled = 10

    @staticmethod
    def parse_error(value: Any) -> int:
        """A ``900`` error code: ``300``, ``"300"`` -> 300."""
        text = str(value).strip()
        if not text.isdigit():
            raise ValueError(f"CIMD2 error code {value!r} is not a number (e.g. 300)")
        return int(text)

    @staticmethod
    def error_name(code: Any) -> str:
        return str(code)

    def status_name(self, status: Any) -> str:
        return "OK" if not status else f"900:{status} ({cimd2.ERRORS.get(status, 'unknown')})"

    def _new_session(self, reader, writer) -> _Cimd2Session:
        return _Cimd2Session(reader, writer)

    async def _converse(self, session: _Cimd2Session) -> None:
        await self._converse_framed(session, session.parser, self._handle)

    def _handle(self, s: _Cimd2Session, item: Packet | Cimd2Error):
        if isinstance(item, Cimd2Error):
            self.counters["generic_nacks"] += 1
            log.warning("bad packet", extra={"peer": s.peer, "error": str(item)})
            if item.number is not None:
                s.send(cimd2.nack(item.number))
            return None
        if item.is_response:
            error = item.error_code
            if item.opcode in (cimd2.OP_NACK, cimd2.OP_GENERAL_ERROR):
                error = error or str(item.opcode)
            self._answered(s, item.number, int(error) if error and error.isdigit() else error)
            return None
        handler = self._operations.get(item.opcode)
        if handler is None:
            self.counters["generic_nacks"] += 1
            s.send(cimd2.general_error(item.number, 1, "unexpected operation"))
            return None
        return handler(self, s, item)

    def _on_login(self, s: _Cimd2Session, packet: Packet):
        self._login(s, packet.get(cimd2.P_USER) or "", packet.get(cimd2.P_PASSWORD) or "",
                    cimd2.response(packet), cimd2.response(packet, error=100, error_text="invalid login"))

    def _on_logout(self, s: _Cimd2Session, packet: Packet):
        self.counters["unbinds"] += 1
        s.send(cimd2.response(packet))
        return CLOSE

    def _on_alive(self, s: _Cimd2Session, packet: Packet):
        self.counters["enquire_links"] += 1
        s.send(cimd2.response(packet))
        return None

    def _on_submit(self, s: _Cimd2Session, packet: Packet):
        destinations = packet.get_all(cimd2.P_DESTINATION)
        if not s.logged_in or len(destinations) != 1:
            self.counters["submits"] += 1
            code = 1 if not s.logged_in else 300 if not destinations else 301
            return self._refuse(s, packet, code)
        destination = destinations[0]
        verdict = self._judge_submit(destination)
        if verdict is NO_RESPONSE:
            self._record_submit(s, packet, None, None)
            return None
        if verdict is not None:
            self._refuse(s, packet, verdict)
        else:
            try:
                data = cimd2.read_user_data(packet)
            except Cimd2Error as exc:
                return self._refuse(s, packet, exc.code)
            scts = cimd2.format_timestamp(self._unique_stamp(destination))
            s.send(cimd2.response(packet, ((cimd2.P_DESTINATION, destination), (cimd2.P_SCTS, scts))))
            message_id = f"{destination}:{scts}"
            self.submit_statuses["OK"] += 1
            self._record_submit(s, packet, "OK", message_id)
            self._accept_submit(s, packet, destination, data, scts, message_id)
        return CLOSE if self._drop_due(s) else None

    _operations = {cimd2.OP_LOGIN: _on_login, cimd2.OP_LOGOUT: _on_logout,
                   cimd2.OP_ALIVE: _on_alive, cimd2.OP_SUBMIT: _on_submit}

    def _refuse(self, s: _Cimd2Session, packet: Packet, code: int) -> None:
        s.send(cimd2.response(packet, error=code, error_text=cimd2.ERRORS.get(code)))
        self.submit_statuses[f"900:{code}"] += 1
        self._record_submit(s, packet, f"900:{code}", None)

    def _record_submit(self, s: _Cimd2Session, packet: Packet, status: str | None,
                       message_id: str | None) -> None:
        sender = packet.get(cimd2.P_ORIGINATOR) or packet.get(cimd2.P_ALPHA_ORIGINATOR)
        self.submits.append({
            "system_id": s.account, "sequence": packet.number,
            "destination": packet.get(cimd2.P_DESTINATION), "source": sender,
            "params": {f"{code:03d}": value for code, value in packet.params},
            "status": status, "message_id": message_id,
        })

    def _accept_submit(self, s: _Cimd2Session, packet: Packet, destination: str, data: cimd2.UserData,
                       scts: str, message_id: str) -> None:
        source = packet.get(cimd2.P_ORIGINATOR) or packet.get(cimd2.P_ALPHA_ORIGINATOR) or ""
        segment = self._segment(data)
        wanted = packet.get(cimd2.P_STATUS_REPORT) or "0"
        wants = int(wanted) if wanted.isdigit() else 0
        self._accept(s.account, source, destination, segment, message_id, wants)
        status = _REPORTS.get(self._receipt_stat(destination), 3)
        if wants & _WANT_BITS[status]:
            self._schedule_receipt(s, {"to": destination, "scts": scts, "status": status})

    def _write_receipt(self, session: _Cimd2Session, number: int, receipt: Receipt) -> None:
        f = receipt.fields
        discharge = cimd2.format_timestamp(datetime.now())
        session.send(cimd2.status_report(number, f["to"], f["scts"], f["status"], discharge))

    def _mo_parts(self, session, source, destination, text, coding, split, ref) -> list[Any]:
        scts = cimd2.format_timestamp(self._unique_stamp(destination))
        return [(destination, source, scts, part) for part in cimd2.message_params(text, ref, self._forced_coding(coding))]

    def _write_mo_part(self, session: _Cimd2Session, number: int, part) -> None:
        destination, source, scts, params = part
        session.send(cimd2.deliver_message(number, destination, source, scts, params))
