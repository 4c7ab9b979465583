"""The SMPP connector: one process holds the bind of one SMPP connection
(`switchboard run smpp --connection NAME`, `python -m services.smpp_connector --connection NAME`).

It is the SMPP part of :class:`services.smsc.connector.SmscConnector`, which holds the queue,
the correlation store, the statuses, MO reassembly and the channel logs for every SMSC
protocol (see there for the sending and receiving rules). What is SMPP here:

- the binds: a transceiver, or a transmitter plus a receiver (`bind`), each an
  :class:`~.session.SmppSession`;
- a SendRequest becomes submit_sm PDUs (:mod:`.outgoing`: coding, UDH / SAR / payload);
- a submit_sm_resp status: ESME_ROK accepted, ESME_RTHROTTLED / ESME_RMSGQFUL pause the bind
  and the part goes again, ESME_RSYSERR (and throttling beyond a minute) is `errored` and
  retried, any other status `failed` `smpp_<ESME name>`;
- a deliver_sm is a receipt (TLVs or text form, its id looked up per `dlr_id_format`) or a
  message from a phone (UDH8, UDH16, SAR or payload); answered ESME_ROK, ESME_RX_T_APPN
  ("try later") or ESME_RINVSRCADR (a sender that is no number).

**Possible duplicate:** when no submit_sm_resp comes within `submit_timeout_s` the session
is closed and the message redelivered, but the SMSC may have accepted it before going silent,
so the phone may get it twice; likewise a multipart message whose first parts were accepted
before the link fell is sent whole again. Nothing is lost either way.
"""

from __future__ import annotations

from typing import Any

from ..protocols.smpp import (
    RETRYABLE_STATUSES,
    THROTTLING_STATUSES,
    decode_text,
    extract_segment,
    normalise_message_id,
    receipt_id_keys,
    status_name,
)
from ..smsc.connector import Answer, Incoming, Report, SmscConnector, Submitted, main_for
from .incoming import receipt_of, receipt_status, sender_number
from .outgoing import build_submits
from .session import SmppSession

ESME_ROK = 0x00
ESME_RINVSRCADR = 0x0A
ESME_RX_T_APPN = 0x64
_ANSWERS = {Answer.OK: ESME_ROK, Answer.RETRY: ESME_RX_T_APPN, Answer.BAD_SENDER: ESME_RINVSRCADR}


class SmppConnector(SmscConnector):
    """The worker of one SMPP connection; see the module docstring."""

    protocol = "smpp"
    session_class = SmppSession
    log_field = "smpp"

    def roles(self) -> list[str]:
        return ["transceiver"] if self.connection.bind == "transceiver" else ["transmitter", "receiver"]

    def id_key(self, message_id: str) -> str:
        return normalise_message_id(message_id)

    def link_summary(self, kind: str, detail: dict) -> dict[str, Any]:
        return {"pdu": f"bind_{detail.get('bind')}", "system_id": self.connection.system_id,
                **super().link_summary(kind, detail)}  # fmt: skip

    # ------------------------------------------------------------------ sending

    def build_parts(self, channel, request, ref):
        return build_submits(self.connection, channel.address, request, ref).parts

    def outcome(self, fields, resp, elapsed_ms: float) -> Submitted:
        status = resp.status
        name = status_name(status) if status else "ESME_ROK"
        summary = {
            "pdu": "submit_sm", "sequence": resp.sequence, "destination": fields["destination_addr"],
            "data_coding": fields["data_coding"], "status": name, "message_id": resp.message_id or None,
            "elapsed_ms": elapsed_ms,
        }  # fmt: skip
        if not status:
            return Submitted(resp.message_id, summary)
        return Submitted(None, summary, refusal=name, code=f"smpp_{name}", message=f"submit_sm refused: {name}",
                         throttled=status in THROTTLING_STATUSES, retryable=status in RETRYABLE_STATUSES)  # fmt: skip

    # ------------------------------------------------------------------ receiving

    async def on_deliver(self, pdu) -> int:
        """The deliver_sm_resp status for one deliver_sm: a receipt or a message from a phone."""
        receipt = receipt_of(pdu)
        if receipt is not None:
            summary = {"pdu": "deliver_sm", "sequence": pdu.sequence, "receipt_id": receipt.message_id, "stat": receipt.stat}
            status, code = receipt_status(receipt.stat)
            keys = receipt_id_keys(receipt.message_id, self.connection.dlr_id_format) if receipt.message_id else []
            detail = f"receipt stat {receipt.stat}" + (f" err {receipt.err}" if receipt.err else "")
            report = Report(keys, receipt.message_id, status, code, detail, summary)
            return _ANSWERS[await self.on_report(report)]
        segment = extract_segment(pdu)
        summary = {"pdu": "deliver_sm", "sequence": pdu.sequence, "source": pdu.source_addr,
                   "destination": pdu.destination_addr, "data_coding": pdu.data_coding}  # fmt: skip
        incoming = Incoming(pdu.source_addr or "", pdu.destination_addr or "", sender_number(pdu), summary)
        if segment.total > 1:
            data = bytes([segment.data_coding & 0xFF]) + segment.payload
            incoming.part = (f"{segment.kind}:{segment.ref}:{segment.total}", segment.seq, segment.total, data)
        else:
            incoming.text = segment.text
        return _ANSWERS[await self.on_message(incoming)]

    def join_parts(self, parts: list[bytes]) -> str:
        """The payloads are joined before decoding, so an escape or surrogate pair a sender
        did cut still comes out whole."""
        return decode_text(b"".join(p[1:] for p in parts), parts[0][0])


def main(argv: list[str] | None = None, connection: str | None = None) -> None:
    """Entry point of `python -m services.smpp_connector --connection NAME` and of
    `switchboard run smpp --connection NAME`."""
    main_for(SmppConnector, "services.smpp_connector", argv, connection)
