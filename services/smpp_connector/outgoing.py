"""A SendRequest as the submit_sm PDUs that carry it (CONTRACT section 6).

Pure functions, no I/O: the connector calls :func:`build_submits` once per message and sends
what it returns in order. Addresses lose their leading `+`; the source TON/NPI are detected
from the channel's address unless the connection fixes them; the text (attachments appended
as `\\n<url>`) goes out in the connection's `default_coding` when it fits, else UCS2, split
the connection's way (`long_messages`) with the 8-bit (UDH) or 16-bit (SAR) reference the
caller rotates per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.channels import SmppConnection
from ..core.models import SendRequest
from ..protocols.smpp import choose_coding, source_ton_npi, split_message
from ..smsc.connector import UnsendableMessage, message_text, phone_number


@dataclass(frozen=True)
class Submission:
    """The submit_sm fields of each part, in order, and what the ChannelLog shows of them."""

    parts: list[dict[str, Any]]
    data_coding: int
    destination: str


def source_address(connection: SmppConnection, address: str) -> tuple[int, int, str]:
    """(TON, NPI, source_addr): detected from the address unless the connection sets them."""
    ton, npi, addr = source_ton_npi(address)
    if connection.source_ton is not None:
        ton = connection.source_ton
    if connection.source_npi is not None:
        npi = connection.source_npi
    return ton, npi, addr


def build_submits(connection: SmppConnection, channel_address: str, request: SendRequest, ref: int) -> Submission:
    """The submit_sm fields for `request` on `connection`; raises UnsendableMessage."""
    destination = phone_number(request.to, "SMPP")
    src_ton, src_npi, source = source_address(connection, channel_address)
    data_coding, _ = choose_coding(text := message_text(request), connection.default_coding)
    try:
        parts = split_message(text, data_coding, connection.long_messages, ref)
    except ValueError as exc:
        raise UnsendableMessage(str(exc)) from None
    common = {
        "service_type": "",
        "source_addr_ton": src_ton,
        "source_addr_npi": src_npi,
        "source_addr": source,
        "dest_addr_ton": connection.dest_ton,
        "dest_addr_npi": connection.dest_npi,
        "destination_addr": destination,
        "registered_delivery": connection.registered_delivery,
    }
    return Submission([{**common, **part.pdu_fields()} for part in parts], data_coding, destination)
