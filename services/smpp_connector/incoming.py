"""What a deliver_sm means: a delivery receipt (and which status it reports) or a message
from a phone (and which channel it belongs to). Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.channels import SmppChannel
from ..protocols.smpp import ESM_DELIVERY_RECEIPT, MESSAGE_STATES, message_state, parse_receipt, stat_name, strip_plus

#: esm_class bits 2-5 hold the message type; 0x04 is an SMSC delivery receipt, 0x20 an
#: intermediate delivery notification (both carry a receipt).
_ESM_TYPE_MASK = 0x3C
_RECEIPT_TYPES = {ESM_DELIVERY_RECEIPT, 0x08, 0x10, 0x20}


@dataclass(frozen=True)
class Receipt:
    """The receipt a deliver_sm carries: the SMSC's message id (None when it names none) and
    the normalised stat (`DELIVRD`, `UNDELIV` ...), plus `err` when the text gave one."""

    message_id: str | None
    stat: str
    err: str | None = None


def receipt_of(pdu) -> Receipt | None:
    """The receipt in `pdu`, or None when it is an ordinary message.

    The TLVs (receipted_message_id, message_state) win over the text form; a deliver_sm is a
    receipt when its esm_class says so or it carries receipted_message_id."""
    esm_type = (pdu.esm_class or 0) & _ESM_TYPE_MASK
    tlv_id = pdu.receipted_message_id
    if esm_type not in _RECEIPT_TYPES and not tlv_id:
        return None
    text = pdu.message_payload or pdu.short_message or b""
    parsed = parse_receipt(text)
    message_id = (tlv_id or parsed["id"] or "").strip() or None
    if pdu.message_state is not None:
        stat = stat_name(pdu.message_state)
    else:
        stat = stat_name(message_state(parsed["stat"] or ""))
    return Receipt(message_id, stat, parsed["err"])


def receipt_status(stat: str) -> tuple[str, str | None]:
    """CONTRACT section 5: DELIVRD -> delivered; ENROUTE/ACCEPTD -> sent; the rest -> failed
    `dlr_<stat>`. Returns (status, error code)."""
    if stat == "DELIVRD":
        return "delivered", None
    if stat in ("ENROUTE", "ACCEPTD"):
        return "sent", None
    return "failed", f"dlr_{stat if stat in MESSAGE_STATES else 'UNKNOWN'}"


def channel_for(channels: list[SmppChannel], destination: str | None) -> SmppChannel | None:
    """The connection's channel whose address is `destination` (a leading `+` ignored on
    both sides), else its first channel (None when it has none)."""
    wanted = strip_plus(destination or "")
    for channel in channels:
        if wanted and strip_plus(channel.address) == wanted:
            return channel
    return channels[0] if channels else None


def sender_number(pdu) -> str:
    """The source address as the URN parser should see it: an international (TON 1) number
    gets back the `+` SMPP leaves out."""
    source = (pdu.source_addr or "").strip()
    if pdu.source_addr_ton == 1 and source.isdigit():
        return "+" + source
    return source
