"""One SMPP 3.4 session on :class:`services.smsc.session.Session` (the shared TCP, window,
keep-alive and closing machinery): what is SMPP here is the frames.

smpplib's blocking client is not used: the codec's smpplib PDU classes are written with
``write`` and read with the codec's fast reader, so one event loop serves the bind, RabbitMQ
and Redis. The session

- binds (transceiver, transmitter or receiver) and raises :class:`BindRefused` with the
  SMSC's command_status when it says no;
- matches submit_sm_resp, enquire_link_resp and unbind_resp by sequence number;
- answers the SMSC's enquire_link and unbind, and a malformed or unknown PDU with
  generic_nack; enquire_link every ``enquire_link_s`` of silence;
- hands every deliver_sm to ``on_deliver``, which returns the deliver_sm_resp status (an
  exception answers ESME_RX_T_APPN, so the SMSC delivers it again later).
"""

from __future__ import annotations

import logging

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
from ..smsc.session import LOGIN_TIMEOUT_S, Closed, LinkDown, LoginRefused, Session, SubmitTimeout

log = logging.getLogger(__name__)

ESME_RX_T_APPN = 0x64
ESME_RINVCMDID = 0x03

__all__ = ["BindRefused", "LinkDown", "SmppSession", "SubmitTimeout"]


class BindRefused(LoginRefused):
    """The SMSC answered the bind with an error status (wrong system_id or password ...)."""

    def __init__(self, status: int):
        super().__init__(f"bind refused: {status_name(status)}")
        self.status = status


class SmppSession(Session):
    """One bind to the SMSC; ``role`` is transceiver, transmitter or receiver."""

    protocol = "SMPP"

    def __init__(self, connection, role, on_deliver=None):
        super().__init__(connection, role, on_deliver)
        self.sequences = SequenceGenerator()

    def send(self, pdu) -> None:
        self.write(encode_pdu(pdu))

    async def login(self) -> None:
        c = self.connection
        pdu = make_pdu(f"bind_{self.role}", sequences=self.sequences, system_id=c.system_id, password=c.password,
                       system_type=c.system_type, interface_version=0x34)  # fmt: skip
        resp = await self.request(pdu.sequence, encode_pdu(pdu), LOGIN_TIMEOUT_S)
        if resp.status:
            raise BindRefused(resp.status)

    def keepalive_interval(self) -> float:
        return self.connection.enquire_link_s

    def keepalive(self):
        pdu = make_pdu("enquire_link", sequences=self.sequences)
        return pdu.sequence, encode_pdu(pdu)

    def logout(self):
        pdu = make_pdu("unbind", sequences=self.sequences)
        return pdu.sequence, encode_pdu(pdu)

    def encode_submit(self, fields):
        sequence = self.sequences.next_sequence()
        return sequence, encode_submit_sm(sequence, fields)

    async def read_frame(self):
        try:
            return await read_hot_pdu(self.reader)
        except PduError as exc:
            log.warning("malformed PDU from the SMSC", extra={"connection": self.connection.name, "error": str(exc)})
            if exc.sequence is None:
                raise Closed(f"unreadable stream: {exc}") from None
            self.send(make_pdu("generic_nack", sequence=exc.sequence, status=exc.status))
            return None

    def response_key(self, pdu):
        return pdu.sequence if pdu.is_response() else None

    def on_request(self, pdu) -> None:
        command = pdu.command
        if command == "deliver_sm":
            self.deliver(pdu)
        elif command == "enquire_link":
            self.send(make_response(pdu))
        elif command == "unbind":
            self.send(make_response(pdu))
            raise Closed("unbind from the SMSC")
        else:
            self.send(make_pdu("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))

    def encode_answer(self, pdu, status) -> bytes:
        if status is None:
            status = ESME_RX_T_APPN
        if pdu.command == "deliver_sm":
            return encode_deliver_sm_resp(pdu.sequence, status)
        return encode_pdu(make_response(pdu, status=status))
