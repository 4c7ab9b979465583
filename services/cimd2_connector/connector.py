"""The CIMD2 connector: one process holds the login of one CIMD2 connection
(`switchboard run cimd2 --connection NAME`, `python -m services.cimd2_connector --connection NAME`).

It is the CIMD2 part of :class:`services.smsc.connector.SmscConnector`, which holds the queue,
the correlation store, the statuses, MO reassembly and the channel logs for every SMSC
protocol (see there for the sending and receiving rules). What is CIMD2 here:

- a SendRequest becomes 03 submits: GSM text in 033 with its `_xy` escapes, other text as
  UTF-16BE hex in 034 with 030:8, long text in parts with the concatenation UDH in 032 and
  044:1 on every part but the last; a numeric channel address in 023, an alphanumeric one in
  027; `registered_delivery` asks for status reports (056:14);
- the submit response's destination and 060 time stamp are the `external_id`
  (`<021>:<060>`); the id key is the destination's last 7 digits and the 060, because the 23
  status report repeats both and SMSCs write the number with or without its prefix;
- a response with 900 is `failed` `cimd2_<code>`, except 4 (link to the SMSC lost) and 10
  (temporary congestion), which pause the link and send the part again, as SMPP throttling;
  a NACK 99 (our packet arrived unreadable) sends it again too;
- 23 `061` 4 -> `delivered`, 1 -> `sent`, 2, 3, 5..9 -> `failed` `dlr_<061>` (other values
  report nothing and are just answered); 20 is a message from a phone. Both are answered
  with a plain response once the broker confirmed, 900:10 when it could not take them ("try
  later"), 900:302 when their user data cannot be read, 900:306 when the sender is no number.
"""

from __future__ import annotations

from typing import Any

from ..protocols import cimd2
from ..protocols.gsm import decode_user_data
from ..smsc.connector import (
    Answer,
    Incoming,
    Report,
    SmscConnector,
    Submitted,
    UnsendableMessage,
    international,
    main_for,
    message_text,
    phone_number,
)
from ..smsc.store import number_time_key
from .session import TRY_LATER, Cimd2Session

BAD_ORIGINATOR = 306
_ANSWERS = {Answer.OK: 0, Answer.RETRY: TRY_LATER, Answer.BAD_SENDER: BAD_ORIGINATOR}


class Cimd2Connector(SmscConnector):
    """The worker of one CIMD2 connection; see the module docstring."""

    protocol = "cimd2"
    log_type = "cimd2"
    log_field = "frames"

    async def open_session(self, role: str) -> Cimd2Session:
        return await Cimd2Session.open(self.connection, role, self.on_deliver)

    def id_key(self, message_id: str) -> str:
        destination, sep, scts = message_id.rpartition(":")
        return number_time_key(destination, scts) if sep else message_id

    def link_summary(self, kind: str, detail: dict) -> dict[str, Any]:
        return {"packet": "01", "username": self.connection.username, **super().link_summary(kind, detail)}

    # ------------------------------------------------------------------ sending

    def build_parts(self, channel, request, ref):
        to = phone_number(request.to, "CIMD2")
        if not to.isdigit() or len(to) > 20:
            raise UnsendableMessage(f"destination {request.to!r} is not 1-20 digits")
        if not channel.address.strip():
            raise UnsendableMessage(f"channel {channel.uuid} has no address to send from")
        reports = cimd2.STATUS_REPORT_DEFAULT if self.connection.registered_delivery else 0
        return [(to, channel.address, params, reports) for params in cimd2.message_params(message_text(request), ref & 0xFF)]

    def outcome(self, part, packet: cimd2.Packet, elapsed_ms: float) -> Submitted:
        summary = {"packet": "03", "number": packet.number, "destination": part[0], "elapsed_ms": elapsed_ms}
        if packet.opcode == cimd2.OP_NACK:
            summary["result"] = "99 NACK"
            return Submitted(None, summary, refusal="cimd2_nack", code="cimd2_nack",
                             message="submit NACKed (99): the SMSC could not read it", throttled=True)  # fmt: skip
        code = packet.error_code
        if code is not None:
            summary["result"] = f"900:{code}"
            meaning = cimd2.ERRORS.get(int(code), "unknown error") if code.isdigit() else "unknown error"
            temporary = code.isdigit() and int(code) in cimd2.TEMPORARY_ERRORS
            return Submitted(None, summary, refusal=f"cimd2_{code}", code=f"cimd2_{code}",
                             message=f"submit refused: {code} {meaning}", throttled=temporary)  # fmt: skip
        destination, scts = packet.get(cimd2.P_DESTINATION) or part[0], packet.get(cimd2.P_SCTS) or ""
        message_id = f"{destination}:{scts}"
        summary.update(result="53", message_id=message_id)
        return Submitted(message_id, summary)

    # ------------------------------------------------------------------ receiving

    async def on_deliver(self, packet: cimd2.Packet) -> int:
        """The 900 code to answer a 20 / 23 with, or 0 for a plain response."""
        if packet.opcode == cimd2.OP_DELIVER_STATUS_REPORT:
            return _ANSWERS[await self._on_status_report(packet)]
        try:
            incoming = self._incoming(packet)
        except cimd2.Cimd2Error as exc:
            self.count(self.metrics.MO, "unreadable")
            self._receive_log(None, None, {"packet": "20", "number": packet.number}, [f"unreadable: {exc}"], "msg_receive")
            return exc.code
        return _ANSWERS[await self.on_message(incoming)]

    async def _on_status_report(self, packet: cimd2.Packet) -> Answer:
        destination, scts = packet.get(cimd2.P_DESTINATION) or "", packet.get(cimd2.P_SCTS) or ""
        summary = {"packet": "23", "number": packet.number, "destination": destination, "scts": scts,
                   "status": packet.get(cimd2.P_STATUS), "error": packet.get(cimd2.P_STATUS_ERROR)}  # fmt: skip
        meaning = cimd2.report_status(packet)
        if meaning is None:
            self.count(self.metrics.RECEIPTS, "ignored")
            return Answer.OK  # 0 or unknown: nothing to report
        status, code = meaning
        keys = [number_time_key(destination, scts)] if destination and scts else []
        detail = f"status report 061:{summary['status']}" + (f" 062:{summary['error']}" if summary["error"] else "")
        return await self.on_report(Report(keys, f"{destination}:{scts}" if keys else None, status, code, detail, summary))

    def _incoming(self, packet: cimd2.Packet) -> Incoming:
        data = cimd2.read_user_data(packet)
        numeric = packet.get(cimd2.P_ORIGINATOR)
        source = numeric or packet.get(cimd2.P_ALPHA_ORIGINATOR) or ""
        destination = packet.get(cimd2.P_DESTINATION) or ""
        summary = {"packet": "20", "number": packet.number, "source": source, "destination": destination, "dcs": data.dcs}
        incoming = Incoming(source, destination, international(source), summary)
        if data.ref is not None and data.total > 1:
            incoming.part = (f"udh:{data.ref}:{data.total}", data.seq, data.total, bytes([data.dcs]) + data.payload)
        else:
            incoming.text = data.text
        return incoming

    def join_parts(self, parts: list[bytes]) -> str:
        """The payloads are joined before decoding, so an escape or surrogate pair a sender
        did cut still comes out whole."""
        return decode_user_data(b"".join(p[1:] for p in parts), parts[0][0])


def main(argv: list[str] | None = None, connection: str | None = None) -> None:
    """Entry point of `python -m services.cimd2_connector --connection NAME` and of
    `switchboard run cimd2 --connection NAME`."""
    main_for(Cimd2Connector, "services.cimd2_connector", argv, connection)
