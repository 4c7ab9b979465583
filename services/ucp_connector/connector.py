"""The UCP/EMI connector: one process holds the login of one UCP connection
(`switchboard run ucp --connection NAME`, `python -m services.ucp_connector --connection NAME`).

It is the UCP part of :class:`services.smsc.connector.SmscConnector`, which holds the queue,
the correlation store, the statuses, MO reassembly and the channel logs for every SMSC
protocol (see there for the sending and receiving rules). What is UCP here:

- a SendRequest becomes OT 51 operations: GSM text as `MT=3` (hex of GSM 03.38 code points),
  other text as `MT=4` UCS2 with XSer DCS 08, long text in parts with the concatenation UDH in
  XSer 01; the channel's address as OAdC (numeric: OTOA 1139, else packed 7-bit with OTOA
  5039); `registered_delivery` asks for notifications (NRq 1, NT 3);
- the ACK's SM `<AdC>:<SCTS>` is the `external_id`; the id key is the recipient's last 7
  digits and the SCTS, because the OT 53 names the recipient (OAdC) and repeats the SCTS, and
  SMSCs write the recipient with or without its country prefix (Kannel matches the same way);
- a NACK is `failed` `ucp_<EC>`, except EC 04, which SMSCs (and the bundled simulator) use
  when a client sends too fast: it pauses the link and the part goes again, as SMPP throttling;
- OT 53 `Dst` 0 -> `delivered`, 1 -> `sent`, 2 -> `failed` `dlr_<Rsn>`; OT 52 is a message
  from a phone (OAdC in either length convention when alphanumeric). Both are answered with
  an ACK once the broker confirmed, NACK 04 when it could not take them ("try later"), NACK
  02 when they cannot be read or the sender is no number.
"""

from __future__ import annotations

from typing import Any

from ..protocols import ucp
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
from .session import EC_TRY_LATER, UcpSession

#: NACK codes that mean "not now": the link pauses and the part is submitted again.
THROTTLING_ECS = frozenset({"04"})
NT_DELIVERED_AND_FAILED = 3
_ANSWERS = {Answer.OK: "", Answer.RETRY: EC_TRY_LATER, Answer.BAD_SENDER: ucp.EC_SYNTAX}


class UcpConnector(SmscConnector):
    """The worker of one UCP connection; see the module docstring."""

    protocol = "ucp"
    log_type = "ucp"
    log_field = "frames"

    async def open_session(self, role: str) -> UcpSession:
        return await UcpSession.open(self.connection, role, self.on_deliver)

    def id_key(self, message_id: str) -> str:
        split = ucp.split_adc_scts(message_id)
        return number_time_key(*split) if split else message_id

    def link_summary(self, kind: str, detail: dict) -> dict[str, Any]:
        return {"frame": "O/60", "username": self.connection.username, **super().link_summary(kind, detail)}

    # ------------------------------------------------------------------ sending

    def build_parts(self, channel, request, ref):
        to = phone_number(request.to, "UCP")
        try:
            ucp.recipient(to)
            ucp.encode_oadc(channel.address)
        except ucp.UcpError as exc:
            raise UnsendableMessage(str(exc)) from None
        notify = NT_DELIVERED_AND_FAILED if self.connection.registered_delivery else 0
        return [(to, channel.address, fields, notify) for fields in ucp.message_fields(message_text(request), ref & 0xFF)]

    def outcome(self, part, frame: ucp.Frame, elapsed_ms: float) -> Submitted:
        summary = {"frame": "O/51", "trn": frame.trn, "destination": part[0], "mt": part[2]["MT"], "elapsed_ms": elapsed_ms}
        try:
            result = ucp.parse_result(frame)
        except ucp.UcpError as exc:
            summary["result"] = f"unreadable: {exc}"
            return Submitted(None, summary, refusal="unreadable", code=f"ucp_{exc.ec}", message=f"OT 51 result unreadable: {exc}")
        if result.ok:
            summary.update(result="A", message_id=result.sm)
            return Submitted(result.sm, summary)
        summary["result"] = f"N/{result.ec}"
        meaning = ucp.ERRORS.get(result.ec, "unknown error")
        return Submitted(None, summary, refusal=f"ucp_{result.ec}", code=f"ucp_{result.ec}",
                         message=f"OT 51 refused: {result.ec} {meaning}", throttled=result.ec in THROTTLING_ECS)  # fmt: skip

    # ------------------------------------------------------------------ receiving

    async def on_deliver(self, frame: ucp.Frame) -> str:
        """The EC to NACK an OT 52 / 53 with, or "" to ACK it."""
        try:
            fields = ucp.fields_5x(frame)
            if frame.ot == ucp.OT_NOTIFICATION:
                return _ANSWERS[await self.on_report(self._report(frame, fields))]
            return _ANSWERS[await self.on_message(self._incoming(frame, fields))]
        except ucp.UcpError as exc:
            self.count(self.metrics.MO if frame.ot == ucp.OT_MO else self.metrics.RECEIPTS, "unreadable")
            self._receive_log(None, None, {"frame": f"O/{frame.ot}", "trn": frame.trn}, [f"unreadable: {exc}"], "msg_receive")
            return exc.ec

    def _report(self, frame: ucp.Frame, fields: dict[str, str]) -> Report:
        handset, scts = fields["OAdC"], fields["SCTS"]
        status, code = ucp.notification_status(fields)
        summary = {"frame": "O/53", "trn": frame.trn, "recipient": handset, "scts": scts, "dst": fields["Dst"],
                   "rsn": fields["Rsn"]}  # fmt: skip
        keys = [number_time_key(handset, scts)] if handset and scts else []
        detail = f"notification Dst {fields['Dst']} Rsn {fields['Rsn'] or '-'}"
        return Report(keys, f"{handset}:{scts}" if keys else None, status, code, detail, summary)

    def _incoming(self, frame: ucp.Frame, fields: dict[str, str]) -> Incoming:
        data = ucp.read_user_data(fields)
        source = ucp.decode_oadc(fields["OAdC"], fields["OTOA"])
        destination = fields["AdC"]
        summary = {"frame": "O/52", "trn": frame.trn, "source": source, "destination": destination, "mt": fields["MT"]}
        incoming = Incoming(source, destination, international(source, fields["OTOA"] == ucp.OTOA_INTERNATIONAL), summary)
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
    """Entry point of `python -m services.ucp_connector --connection NAME` and of
    `switchboard run ucp --connection NAME`."""
    main_for(UcpConnector, "services.ucp_connector", argv, connection)
