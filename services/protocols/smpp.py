"""SMPP 3.4 codec shared by the SMPP connector and the SMSC simulator.

Pure functions (plus one ``async`` frame reader); no sockets, no globals that matter.

PDUs
    PDU objects are smpplib's own classes (``smpplib.command.SubmitSM`` ...), built with
    :func:`make_pdu` / :func:`make_response`, turned into bytes with :func:`encode_pdu` and
    parsed with :func:`parse_pdu` / :func:`read_pdu`. Attribute names are smpplib's
    (``pdu.command``, ``pdu.sequence``, ``pdu.status``, ``pdu.short_message``,
    ``pdu.receipted_message_id`` ...).

    Conventions after :func:`parse_pdu`: C-octet-string fields (``source_addr``,
    ``system_id``, ``message_id``, ``receipted_message_id`` ...) are ``str``; octet strings
    (``short_message``, ``message_payload``, ``network_error_code``) are ``bytes``; integer
    TLVs are ``int``; absent TLVs are ``None``; TLVs the command does not define are kept in
    ``pdu.unknown_tlvs`` (``{tag: bytes}``). A parsed PDU can be encoded again.

    smpplib quirks worked around here:

    * ``make_pdu`` needs a "client" with ``next_sequence()`` for request PDUs and silently
      ignores a ``sequence=`` keyword on responses (its ``_set_vars`` only sets attributes that
      read as None, and ``sequence`` reads the client's counter): :func:`make_pdu` sets the
      sequence explicitly and :class:`SequenceGenerator` is the stand-in client.
    * smpplib's TLV parser raises on unknown tags (unless told not to), raises ``KeyError`` on
      a known tag the command does not list (e.g. ``message_state`` in a ``data_sm_resp``),
      reads integer TLVs by their declared size instead of the TLV length, and drops the last
      character of a C-string TLV (``receipted_message_id``) sent without its NUL terminator,
      as several SMSCs do. :func:`parse_pdu` lets smpplib parse the mandatory body and parses
      the TLVs itself.
    * smpplib does not check that the mandatory body is consistent with ``command_length``;
      :func:`parse_pdu` does and raises :class:`PduError`.
    * smpplib leaves parsed strings as ``bytes`` but can only encode ``str``; they are decoded
      (Latin-1) so that parsed PDUs re-encode.

Text
    :func:`choose_coding`, :func:`encode_text`, :func:`decode_text`, :func:`split_message`,
    :func:`parse_udh`, :func:`extract_segment`, :class:`Reassembler`. GSM 7-bit is sent
    unpacked with ``data_coding`` 0 (see :mod:`.gsm`, which replaces ``smpplib.gsm``).

Receipts and ids
    :func:`format_receipt`, :func:`parse_receipt`, :func:`normalise_message_id`,
    :func:`hex_to_dec`, :func:`dec_to_hex`, :func:`receipt_id_keys`.

Addresses and statuses
    :func:`source_ton_npi`, :func:`strip_plus`, :func:`status_name`, :func:`status_code`.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import smpplib.command
import smpplib.consts
import smpplib.smpp
from smpplib import command_codes
from smpplib import exceptions as smpp_exceptions
from smpplib.ptypes import flag, ostr

from .gsm import SEPTETS, chunk_text, decode_user_data, gsm_encode, is_gsm7, split_udh

__all__ = [
    "HEADER_LENGTH", "MAX_PDU_LENGTH", "PduError", "UnknownPdu", "SequenceGenerator",
    "make_pdu", "make_response", "encode_pdu", "parse_pdu", "read_pdu",
    "encode_submit_sm", "encode_deliver_sm_resp", "parse_hot_pdu", "read_hot_pdu",
    "DC_GSM7", "DC_IA5", "DC_BINARY", "DC_LATIN1", "DC_BINARY2", "DC_UCS2", "CODINGS",
    "coding_value", "choose_coding", "encode_text", "decode_text", "text_units",
    "MessagePart", "split_message", "parse_udh", "Segment", "extract_segment", "Reassembler",
    "join_segments", "ESM_UDHI", "ESM_DELIVERY_RECEIPT", "MESSAGE_STATES", "message_state",
    "stat_name", "format_receipt", "parse_receipt", "normalise_message_id", "hex_to_dec",
    "dec_to_hex", "receipt_id_keys", "source_ton_npi", "strip_plus", "STATUS_NAMES",
    "status_name", "status_code", "RETRYABLE_STATUSES", "is_gsm7",
]

# --------------------------------------------------------------------------------------
# PDU framing
# --------------------------------------------------------------------------------------

HEADER_LENGTH = 16
#: Largest PDU :func:`read_pdu` accepts. SMPP has no formal limit; 64 KiB is generous.
MAX_PDU_LENGTH = 64 * 1024

ESME_ROK = 0x00
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RSYSERR = 0x08


class PduError(Exception):
    """A frame or PDU body that cannot be used.

    ``status`` is the command_status to answer with in a generic_nack; ``sequence`` and
    ``command_id`` are set when the header could be read (then the stream is still in sync
    and the caller may nack and carry on). :func:`read_pdu` raises it with ``sequence`` None
    for a bogus ``command_length``: the stream is lost and the connection should be closed.
    """

    def __init__(self, message: str, *, status: int = ESME_RINVCMDLEN,
                 sequence: int | None = None, command_id: int | None = None):
        super().__init__(message)
        self.status = status
        self.sequence = sequence
        self.command_id = command_id


class UnknownPdu:
    """A well-framed PDU whose command_id smpplib does not implement (answer generic_nack
    ESME_RINVCMDID if it is a request). Looks enough like a smpplib PDU for logging."""

    command = "unknown"

    def __init__(self, command_id: int, status: int, sequence: int, body: bytes):
        self.command_id = command_id
        self.status = status
        self.sequence = sequence
        self.body = body
        self.unknown_tlvs: dict[int, bytes] = {}

    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def is_request(self) -> bool:
        return not self.is_response()

    def __repr__(self) -> str:
        return f"UnknownPdu(command_id=0x{self.command_id:08x}, sequence={self.sequence})"


class SequenceGenerator:
    """Sequence numbers 1..0x7FFFFFFF, wrapping; also the "client" smpplib PDUs want."""

    MAX = 0x7FFFFFFF

    def __init__(self, start: int = 1):
        self._next = start if 1 <= start <= self.MAX else 1
        self.sequence = 0  # smpplib reads .sequence as a fallback; never used by our PDUs

    def next_sequence(self) -> int:
        seq = self._next
        self._next = 1 if seq >= self.MAX else seq + 1
        return seq


_DEFAULT_SEQUENCES = SequenceGenerator()
_PARSE_CLIENT = SequenceGenerator()

#: request -> response command name
RESPONSE_OF = {
    name: name + "_resp"
    for name in command_codes.commands
    if not name.endswith("_resp") and name + "_resp" in command_codes.commands
}


def make_pdu(command: str, *, sequence: int | None = None, status: int = ESME_ROK,
             sequences: SequenceGenerator | None = None, **fields: Any):
    """Build a smpplib PDU object.

    ``sequence``: explicit sequence number (responses must echo the request's); without it
    one is drawn from ``sequences`` (a module-wide generator by default). ``fields`` are set
    as attributes after construction; an unknown field name raises ``ValueError``. Octet
    strings (``short_message``, ``message_payload``) must be ``bytes``; C-strings ``str``.
    """
    client = sequences or _DEFAULT_SEQUENCES
    try:
        pdu = smpplib.smpp.make_pdu(command, client=client, sequence=sequence or 0)
    except smpp_exceptions.UnknownCommandError as exc:
        raise ValueError(str(exc)) from None
    pdu.sequence = sequence if sequence is not None else client.next_sequence()
    pdu.status = status
    params = pdu.params
    for key, value in fields.items():
        if key not in params:
            raise ValueError(f"{command} has no field {key!r}")
        setattr(pdu, key, value)
    pdu.unknown_tlvs = {}
    return pdu


def make_response(request, status: int = ESME_ROK, **fields: Any):
    """The response to ``request`` (same sequence); generic_nack for commands without one."""
    name = RESPONSE_OF.get(request.command, "generic_nack")
    try:
        return make_pdu(name, sequence=request.sequence, status=status, **fields)
    except ValueError:
        if name == "generic_nack":
            raise
        # smpplib does not implement e.g. replace_sm_resp: nack instead
        return make_pdu("generic_nack", sequence=request.sequence, status=status or ESME_RINVCMDID)


def encode_pdu(pdu) -> bytes:
    """Serialise a PDU (smpplib's ``generate``); raises ``ValueError`` on bad field values."""
    try:
        return pdu.generate()
    except (struct.error, TypeError, AttributeError, UnicodeError) as exc:
        raise ValueError(f"cannot encode {pdu.command}: {exc}") from exc


_TLV_NAMES = {code: name for name, code in smpplib.consts.OPTIONAL_PARAMS.items()}


def _parse_tlvs(pdu, data: bytes, sequence: int, command_id: int) -> None:
    pos, n = 0, len(data)
    params = pdu.params
    unknown = pdu.unknown_tlvs
    while pos < n:
        if pos + 4 > n:
            raise PduError("truncated TLV header", status=0xC0, sequence=sequence, command_id=command_id)
        tag, length = struct.unpack_from(">HH", data, pos)
        pos += 4
        value = data[pos:pos + length]
        if len(value) != length:
            raise PduError(f"TLV 0x{tag:04x} longer than the PDU", status=0xC2,
                           sequence=sequence, command_id=command_id)
        pos += length
        name = _TLV_NAMES.get(tag)
        param = params.get(name) if name else None
        if param is None:
            unknown[tag] = value
        elif param.type is int:
            setattr(pdu, name, int.from_bytes(value, "big"))
        elif param.type is str:
            setattr(pdu, name, value.split(b"\0", 1)[0].decode("latin-1"))
        elif param.type is ostr:
            setattr(pdu, name, value)
        elif param.type is flag:
            setattr(pdu, name, True)


def parse_pdu(data: bytes):
    """Parse one complete PDU (header included).

    Returns a smpplib PDU object (see the module docstring for field types) or
    :class:`UnknownPdu` for a command smpplib does not implement. Raises :class:`PduError`
    for a malformed PDU (``sequence`` set, so the caller can answer generic_nack).
    """
    if len(data) < HEADER_LENGTH:
        raise PduError(f"PDU of {len(data)} bytes is shorter than a header")
    length, command_id, status, sequence = struct.unpack_from(">LLLL", data)
    if length != len(data):
        raise PduError(f"command_length {length} but {len(data)} bytes", sequence=sequence,
                       command_id=command_id)
    try:
        name = command_codes.get_command_name(command_id)
        pdu = smpplib.smpp.make_pdu(name, client=_PARSE_CLIENT, sequence=sequence,
                                    allow_unknown_opt_params=True)
    except smpp_exceptions.UnknownCommandError:
        return UnknownPdu(command_id, status, sequence, data[HEADER_LENGTH:])
    tlv_chunks: list[bytes] = []
    pdu.parse_optional_params = tlv_chunks.append  # instance override: we parse TLVs ourselves
    try:
        pdu.parse(data)
    except Exception as exc:  # smpplib raises assorted errors on garbage
        raise PduError(f"malformed {name}: {exc}", status=ESME_RSYSERR, sequence=sequence,
                       command_id=command_id) from None
    del pdu.parse_optional_params
    pdu.sequence = sequence
    pdu.unknown_tlvs = {}
    body = memoryview(data)[HEADER_LENGTH:]
    # Check the mandatory part really is what smpplib consumed, and decode C-strings.
    consumed = 0
    params = pdu.params
    for fname in pdu.params_order:
        if fname in smpplib.consts.OPTIONAL_PARAMS:
            break
        value = getattr(pdu, fname)
        if value is None:
            break
        ptype = params[fname].type
        if ptype is int:
            consumed += params[fname].size
        elif ptype is str:
            end = consumed + len(value)
            if end >= len(body) or body[end] != 0:
                raise PduError(f"malformed {name}: {fname} is not NUL-terminated",
                               sequence=sequence, command_id=command_id)
            consumed = end + 1
            if isinstance(value, bytes):
                setattr(pdu, fname, value.decode("latin-1"))
        elif ptype is ostr:
            consumed += len(value)
    if pdu.command in ("submit_sm", "deliver_sm") and pdu.short_message is not None:
        if len(pdu.short_message) != (pdu.sm_length or 0):
            raise PduError(f"malformed {name}: sm_length {pdu.sm_length} but "
                           f"{len(pdu.short_message)} octets", sequence=sequence, command_id=command_id)
    tlv_data = tlv_chunks[0] if tlv_chunks else b""
    if consumed + len(tlv_data) != len(body):
        raise PduError(f"malformed {name}: body length mismatch", sequence=sequence,
                       command_id=command_id)
    if tlv_data:
        _parse_tlvs(pdu, tlv_data, sequence, command_id)
    return pdu


async def read_pdu(reader, *, max_length: int = MAX_PDU_LENGTH):
    """Read exactly one PDU from an ``asyncio.StreamReader`` and parse it.

    Raises ``asyncio.IncompleteReadError`` at end of stream, :class:`PduError` with
    ``sequence`` None when ``command_length`` is < 16 or > ``max_length`` (the stream cannot
    be resynchronised: close it), and :class:`PduError` with ``sequence`` set for a malformed
    body (the stream is still in sync).
    """
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">L", head)
    if length < HEADER_LENGTH or length > max_length:
        raise PduError(f"bogus command_length {length} (must be {HEADER_LENGTH}..{max_length})")
    rest = await reader.readexactly(length - 4)
    return parse_pdu(head + rest)


# --------------------------------------------------------------------------------------
# Hot-path PDUs (struct, no smpplib objects)
# --------------------------------------------------------------------------------------
#
# The connector builds a submit_sm and a deliver_sm_resp and parses a submit_sm_resp and a
# deliver_sm per message; through smpplib's classes that was about a tenth of its CPU. These
# functions do the same with struct. smpplib stays the reference: codec_test checks them
# byte for byte (and field for field) against make_pdu/encode_pdu/parse_pdu over a table of
# cases, and whatever they do not cover (another TLV, a field over its length, a malformed
# PDU) is handed to smpplib's path, so the result is always what smpplib gives.

CMD_SUBMIT_SM = 0x00000004
CMD_SUBMIT_SM_RESP = 0x80000004
CMD_DELIVER_SM = 0x00000005
CMD_DELIVER_SM_RESP = 0x80000005

_HEADER = struct.Struct(">LLLL")
_SUBMIT_PARAMS = smpplib.command.SubmitSM.params
#: submit_sm TLVs the fast encoder writes (what split_message produces), in smpplib's order.
_FAST_SUBMIT_TLVS = ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum", "message_payload")
_FAST_SUBMIT_FIELDS = frozenset({
    "service_type", "source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton", "dest_addr_npi",
    "destination_addr", "esm_class", "protocol_id", "priority_flag", "schedule_delivery_time", "validity_period",
    "registered_delivery", "replace_if_present_flag", "data_coding", "sm_default_msg_id", "short_message",
    *_FAST_SUBMIT_TLVS,
})  # fmt: skip
_TLV_CODES = smpplib.consts.OPTIONAL_PARAMS


def _cstr(value: str | None, field_name: str) -> bytes:
    """A C-octet-string as smpplib writes it: cut to its maximum length minus the NUL."""
    if not value:
        return b"\0"
    limit = _SUBMIT_PARAMS[field_name].max - 1
    return value[:limit].encode("latin-1") + b"\0"


def encode_submit_sm(sequence: int, fields: dict[str, Any]) -> bytes:
    """The bytes of ``encode_pdu(make_pdu("submit_sm", sequence=sequence, **fields))``,
    without building smpplib objects (fields it does not cover go through smpplib)."""
    short_message = fields.get("short_message") or b""
    if not _FAST_SUBMIT_FIELDS.issuperset(fields) or len(short_message) > 254 or not all(
        isinstance(fields.get(name, ""), str) and fields.get(name, "").isascii()
        for name in ("service_type", "source_addr", "destination_addr", "schedule_delivery_time", "validity_period")
    ):  # fmt: skip
        return encode_pdu(make_pdu("submit_sm", sequence=sequence, **fields))
    get = fields.get
    try:
        body = b"".join((
            _cstr(get("service_type"), "service_type"),
            bytes((get("source_addr_ton") or 0, get("source_addr_npi") or 0)),
            _cstr(get("source_addr"), "source_addr"),
            bytes((get("dest_addr_ton") or 0, get("dest_addr_npi") or 0)),
            _cstr(get("destination_addr"), "destination_addr"),
            bytes((get("esm_class") or 0, get("protocol_id") or 0, get("priority_flag") or 0)),
            _cstr(get("schedule_delivery_time"), "schedule_delivery_time"),
            _cstr(get("validity_period"), "validity_period"),
            bytes((get("registered_delivery") or 0, get("replace_if_present_flag") or 0, get("data_coding") or 0,
                   get("sm_default_msg_id") or 0, len(short_message))),
            short_message,
        ))  # fmt: skip
    except (TypeError, ValueError):  # an int out of range: smpplib's error message
        return encode_pdu(make_pdu("submit_sm", sequence=sequence, **fields))
    tlvs = []
    for name in _FAST_SUBMIT_TLVS:
        value = get(name)
        if value is None:
            continue
        if name == "message_payload":
            if value:
                tlvs.append(struct.pack(">HH", _TLV_CODES[name], len(value)) + value)
        else:
            size = _SUBMIT_PARAMS[name].size
            tlvs.append(struct.pack(">HH" + ("B" if size == 1 else "H"), _TLV_CODES[name], size, value))
    if tlvs:
        body += b"".join(tlvs)
    return _HEADER.pack(HEADER_LENGTH + len(body), CMD_SUBMIT_SM, ESME_ROK, sequence) + body


def encode_deliver_sm_resp(sequence: int, status: int = ESME_ROK) -> bytes:
    """The bytes of ``encode_pdu(make_response(deliver_sm, status=status))`` (empty message_id)."""
    return _HEADER.pack(HEADER_LENGTH + 1, CMD_DELIVER_SM_RESP, status, sequence) + b"\0"


class _ParsedPdu:
    """A parsed hot-path PDU with the attributes smpplib's class would have after
    :func:`parse_pdu` (absent fields None), and nothing else."""

    command = ""
    params: dict = {}
    status = ESME_ROK
    sequence = 0

    def is_response(self) -> bool:
        return self.command.endswith("_resp")

    def is_request(self) -> bool:
        return not self.is_response()

    def __repr__(self) -> str:
        return f"{self.command}(sequence={self.sequence}, status={self.status})"


class SubmitSmResp(_ParsedPdu):
    command = "submit_sm_resp"
    params = smpplib.command.SubmitSMResp.params
    message_id = None


class DeliverSm(_ParsedPdu):
    command = "deliver_sm"
    params = smpplib.command.DeliverSM.params


for _name in smpplib.command.DeliverSM.params_order:
    setattr(DeliverSm, _name, None)

_DELIVER_STRINGS = ("service_type", "source_addr", "destination_addr", "schedule_delivery_time", "validity_period")


def _parse_submit_sm_resp(data: bytes, status: int, sequence: int):
    pdu = SubmitSmResp()
    pdu.status, pdu.sequence, pdu.unknown_tlvs = status, sequence, {}
    if len(data) == HEADER_LENGTH:
        return pdu  # an error response without a body, as smpplib reads it
    end = data.find(b"\0", HEADER_LENGTH)
    if end != len(data) - 1:
        return None
    pdu.message_id = data[HEADER_LENGTH:end].decode("latin-1")
    return pdu


def _parse_deliver_sm(data: bytes, status: int, sequence: int):
    pdu = DeliverSm()
    pdu.status, pdu.sequence, pdu.unknown_tlvs = status, sequence, {}
    pos, n = HEADER_LENGTH, len(data)
    find = data.find

    def cstr(name: str) -> bool:
        nonlocal pos
        end = find(b"\0", pos)
        if end < 0 or end - pos >= DeliverSm.params[name].max:
            return False
        setattr(pdu, name, data[pos:end].decode("latin-1"))
        pos = end + 1
        return True

    if not cstr("service_type") or pos + 2 > n:
        return None
    pdu.source_addr_ton, pdu.source_addr_npi = data[pos], data[pos + 1]
    pos += 2
    if not cstr("source_addr") or pos + 2 > n:
        return None
    pdu.dest_addr_ton, pdu.dest_addr_npi = data[pos], data[pos + 1]
    pos += 2
    if not cstr("destination_addr") or pos + 3 > n:
        return None
    pdu.esm_class, pdu.protocol_id, pdu.priority_flag = data[pos], data[pos + 1], data[pos + 2]
    pos += 3
    if not cstr("schedule_delivery_time") or not cstr("validity_period") or pos + 5 > n:
        return None
    (pdu.registered_delivery, pdu.replace_if_present_flag, pdu.data_coding, pdu.sm_default_msg_id,
     pdu.sm_length) = data[pos:pos + 5]  # fmt: skip
    pos += 5
    if pdu.sm_length == 0 or pos + pdu.sm_length > n:
        return None  # smpplib's reading of an empty short_message is its own: let it parse
    pdu.short_message = data[pos:pos + pdu.sm_length]
    pos += pdu.sm_length
    if pos < n:
        try:
            _parse_tlvs(pdu, data[pos:], sequence, CMD_DELIVER_SM)
        except PduError:
            return None
        if pdu.unknown_tlvs:
            return None
    return pdu


def parse_hot_pdu(data: bytes):
    """:func:`parse_pdu` with a struct fast path for submit_sm_resp and deliver_sm (the
    objects answer the same attributes); anything unusual goes through :func:`parse_pdu`."""
    if len(data) >= HEADER_LENGTH:
        length, command_id, status, sequence = _HEADER.unpack_from(data)
        if length == len(data):
            pdu = None
            if command_id == CMD_SUBMIT_SM_RESP:
                pdu = _parse_submit_sm_resp(data, status, sequence)
            elif command_id == CMD_DELIVER_SM:
                pdu = _parse_deliver_sm(data, status, sequence)
            if pdu is not None:
                return pdu
    return parse_pdu(data)


async def read_hot_pdu(reader, *, max_length: int = MAX_PDU_LENGTH):
    """:func:`read_pdu` parsing with :func:`parse_hot_pdu`."""
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">L", head)
    if length < HEADER_LENGTH or length > max_length:
        raise PduError(f"bogus command_length {length} (must be {HEADER_LENGTH}..{max_length})")
    rest = await reader.readexactly(length - 4)
    return parse_hot_pdu(head + rest)


# --------------------------------------------------------------------------------------
# Text coding
# --------------------------------------------------------------------------------------

DC_GSM7 = 0x00
DC_IA5 = 0x01
DC_BINARY = 0x02
DC_LATIN1 = 0x03
DC_BINARY2 = 0x04
DC_UCS2 = 0x08

#: channel-config coding name -> data_coding
CODINGS = {"gsm7": DC_GSM7, "latin1": DC_LATIN1, "ucs2": DC_UCS2}


def coding_value(coding: str | int) -> int:
    """``"gsm7"|"latin1"|"ucs2"`` or an int data_coding -> data_coding; ``ValueError`` else."""
    if isinstance(coding, int):
        return coding
    try:
        return CODINGS[str(coding).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown coding {coding!r} (gsm7, latin1 or ucs2)") from None


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def choose_coding(text: str, default_coding: str | int = "gsm7") -> tuple[int, bytes]:
    """Pick the data_coding for ``text`` and encode it: returns ``(data_coding, payload)``.

    Follows CONTRACT section 6 ("text that does not fit falls back to ucs2"):
    default gsm7 -> gsm7 (0) if every character is in GSM 03.38 (with extension), else ucs2;
    default latin1 -> latin1 (3) if the text fits Latin-1, else gsm7 if it fits GSM, else ucs2;
    default ucs2 -> ucs2 (8).
    """
    default = coding_value(default_coding)
    if default == DC_LATIN1 and _fits_latin1(text):
        return DC_LATIN1, text.encode("latin-1")
    if default in (DC_GSM7, DC_LATIN1) and is_gsm7(text):
        return DC_GSM7, gsm_encode(text)
    return DC_UCS2, text.encode("utf-16-be")


def encode_text(text: str, data_coding: int | str) -> bytes:
    """Encode for ``data_coding`` 0 (GSM unpacked), 1 (ASCII), 2/4 (binary: Latin-1),
    3 (Latin-1) or 8 (UTF-16BE). Raises ``ValueError`` if the text does not fit the coding
    or the coding is not one of those."""
    dc = coding_value(data_coding)
    try:
        if dc == DC_GSM7:
            return gsm_encode(text)
        if dc == DC_IA5:
            return text.encode("ascii")
        if dc in (DC_LATIN1, DC_BINARY, DC_BINARY2):
            return text.encode("latin-1")
        if dc == DC_UCS2:
            return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text does not fit data_coding {dc}: {exc}") from None
    raise ValueError(f"cannot encode to data_coding {dc}")


def decode_text(payload: bytes, data_coding: int) -> str:
    """Decode a short_message / message_payload body (UDH already removed). Never raises.
    See :func:`.gsm.decode_user_data`, which every protocol shares."""
    return decode_user_data(payload, data_coding)


def text_units(text: str, data_coding: int | str) -> int:
    """Length in the unit the limits use: septets (0), UTF-16 units (8), octets (others)."""
    dc = coding_value(data_coding)
    if dc == DC_GSM7:
        return sum(SEPTETS.get(ch, 1) for ch in text)
    if dc == DC_UCS2:
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
    return len(text)


# --------------------------------------------------------------------------------------
# Splitting, UDH, SAR and reassembly
# --------------------------------------------------------------------------------------

ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04

# (single limit, per-part limit with 8-bit ref UDH / SAR, per-part limit with 16-bit ref UDH)
_LIMITS = {DC_GSM7: (160, 153, 152), DC_UCS2: (70, 67, 66)}
_OCTET_LIMITS = (140, 134, 133)

SPLIT_MODES = ("udh", "udh16", "sar", "payload")


@dataclass(frozen=True)
class MessagePart:
    """One submit_sm/deliver_sm worth of a message.

    ``short_message`` includes the UDH when ``esm_class`` has UDHI (0x40); ``tlvs`` are extra
    PDU fields (``sar_*`` or ``message_payload``) to pass to :func:`make_pdu`.
    """

    short_message: bytes
    esm_class: int
    data_coding: int
    seq: int = 1
    total: int = 1
    tlvs: dict[str, Any] = field(default_factory=dict)

    def pdu_fields(self) -> dict[str, Any]:
        """Fields for :func:`make_pdu` (short_message, esm_class, data_coding and TLVs)."""
        return {"short_message": self.short_message, "esm_class": self.esm_class,
                "data_coding": self.data_coding, **self.tlvs}


def _unit_cost(dc: int):
    if dc == DC_GSM7:
        return lambda ch: SEPTETS[ch]
    if dc == DC_UCS2:
        return lambda ch: 2 if ord(ch) > 0xFFFF else 1
    return lambda ch: 1


def split_message(text: str, coding: str | int = "gsm7", mode: str = "udh", ref: int = 0) -> list[MessagePart]:
    """Split ``text`` into the parts to submit, in order.

    ``coding``: the data_coding to use (name or int; see :func:`choose_coding`). ``mode``:
    ``udh`` (UDH ``05 00 03 ref total seq``, esm_class 0x40), ``udh16`` (UDH ``06 08 04
    ref_hi ref_lo total seq``), ``sar`` (``sar_msg_ref_num``/``sar_total_segments``/
    ``sar_segment_seqnum`` TLVs, esm_class 0) or ``payload`` (one part with an empty
    short_message and the whole text in ``message_payload``). ``ref`` is the concatenation
    reference (taken mod 256 for ``udh``, mod 65536 otherwise).

    Text that fits one message (160 septets / 140 octets / 70 UTF-16 units) is always one
    plain part. Otherwise parts hold at most 153 septets / 134 octets / 67 UTF-16 units
    (152 / 133 / 66 with a 16-bit reference) and are cut between characters, so an escape
    pair or a surrogate pair is never split. More than 255 parts raise ``ValueError``, as does
    text the coding cannot represent.
    """
    if mode not in SPLIT_MODES:
        raise ValueError(f"unknown split mode {mode!r} ({', '.join(SPLIT_MODES)})")
    dc = coding_value(coding)
    encoded = encode_text(text, dc)  # validates the coding
    single, multi, multi16 = _LIMITS.get(dc, _OCTET_LIMITS)
    if text_units(text, dc) <= single:
        return [MessagePart(encoded, 0, dc)]
    if mode == "payload":
        return [MessagePart(b"", 0, dc, tlvs={"message_payload": encoded})]
    limit = multi16 if mode == "udh16" else multi
    chunks = chunk_text(text, limit, _unit_cost(dc))
    total = len(chunks)
    if total > 255:
        raise ValueError(f"message needs {total} parts; at most 255 are possible")
    parts = []
    for seq, chunk in enumerate(chunks, start=1):
        body = encode_text(chunk, dc)
        if mode == "udh":
            udh = bytes((5, 0x00, 3, ref & 0xFF, total, seq))
            parts.append(MessagePart(udh + body, ESM_UDHI, dc, seq, total))
        elif mode == "udh16":
            r = ref & 0xFFFF
            udh = bytes((6, 0x08, 4, r >> 8, r & 0xFF, total, seq))
            parts.append(MessagePart(udh + body, ESM_UDHI, dc, seq, total))
        else:
            tlvs = {"sar_msg_ref_num": ref & 0xFFFF, "sar_total_segments": total, "sar_segment_seqnum": seq}
            parts.append(MessagePart(body, 0, dc, seq, total, tlvs))
    return parts


def _parse_udh(data: bytes) -> tuple[int | None, int, int, bytes, str]:
    return split_udh(data)


def parse_udh(short_message: bytes) -> tuple[int | None, int, int, bytes]:
    """Split a UDHI short_message into ``(ref, total, seq, payload)``.

    Understands concatenation IEs 0x00 (8-bit ref) and 0x08 (16-bit ref); other IEs are
    skipped. Without a concatenation IE: ``(None, 1, 1, payload)``. ``ValueError`` if the
    UDH length is inconsistent.
    """
    ref, total, seq, payload, _ = _parse_udh(short_message)
    return ref, total, seq, payload


@dataclass(frozen=True)
class Segment:
    """What one received submit_sm/deliver_sm contributes to a message.

    ``kind``: ``single``, ``udh8``, ``udh16``, ``sar`` or ``payload``; ``payload`` is the user
    data without UDH, still encoded in ``data_coding``.
    """

    ref: int | None
    total: int
    seq: int
    payload: bytes
    data_coding: int
    kind: str

    @property
    def text(self) -> str:
        return decode_text(self.payload, self.data_coding)


def extract_segment(pdu) -> Segment:
    """Concatenation info of a parsed submit_sm / deliver_sm / data_sm.

    ``message_payload`` wins over ``short_message``; esm_class UDHI means a UDH is present
    (8- or 16-bit reference); otherwise the SAR TLVs are used. A malformed UDH is treated as
    no UDH (the whole data is the payload). Never raises on odd input.
    """
    dc = getattr(pdu, "data_coding", 0) or 0
    data = getattr(pdu, "message_payload", None) or getattr(pdu, "short_message", None) or b""
    kind = "payload" if getattr(pdu, "message_payload", None) else "single"
    if (getattr(pdu, "esm_class", 0) or 0) & ESM_UDHI:
        try:
            ref, total, seq, payload, udh_kind = _parse_udh(data)
        except ValueError:
            return Segment(None, 1, 1, bytes(data), dc, kind)
        if ref is not None and total > 1 and 1 <= seq <= total:
            return Segment(ref, total, seq, payload, dc, udh_kind)
        return Segment(None, 1, 1, payload, dc, kind)
    sar_ref = getattr(pdu, "sar_msg_ref_num", None)
    sar_total = getattr(pdu, "sar_total_segments", None) or 0
    sar_seq = getattr(pdu, "sar_segment_seqnum", None) or 0
    if sar_ref is not None and sar_total > 1 and 1 <= sar_seq <= sar_total:
        return Segment(sar_ref, sar_total, sar_seq, bytes(data), dc, "sar")
    return Segment(None, 1, 1, bytes(data), dc, kind)


def join_segments(segments: list[Segment]) -> str:
    """Decode the ordered segments of one message. The payloads are joined before decoding,
    so an escape or surrogate pair a sender did cut still comes out whole."""
    if not segments:
        return ""
    return decode_text(b"".join(s.payload for s in segments), segments[0].data_coding)


class Reassembler:
    """Collects the segments of concatenated messages.

    ``add(key, segment)`` returns the complete ordered list of segments when the message is
    complete (immediately for a single segment), else None. ``key`` identifies the sender
    scope (e.g. ``(system_id, source, destination)``); parts are grouped by
    ``(key, kind, ref, total)``. Incomplete messages older than ``max_age_s`` are dropped by
    :meth:`purge` (called from ``add`` now and then). A repeated part replaces the earlier one.
    """

    def __init__(self, max_age_s: float = 600.0, clock=time.monotonic):
        self.max_age_s = max_age_s
        self._clock = clock
        self._pending: dict[Hashable, tuple[float, dict[int, Segment]]] = {}
        self._adds = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Hashable, segment: Segment) -> list[Segment] | None:
        if segment.total <= 1 or segment.ref is None:
            return [segment]
        self._adds += 1
        if self._adds % 1000 == 0:
            self.purge()
        group = (key, segment.kind, segment.ref, segment.total)
        entry = self._pending.get(group)
        if entry is None:
            entry = (self._clock(), {})
            self._pending[group] = entry
        parts = entry[1]
        parts[segment.seq] = segment
        if len(parts) < segment.total:
            return None
        del self._pending[group]
        return [parts[i] for i in range(1, segment.total + 1)]

    def purge(self) -> int:
        """Drop incomplete messages older than ``max_age_s``; returns how many."""
        limit = self._clock() - self.max_age_s
        old = [g for g, (t, _) in self._pending.items() if t < limit]
        for g in old:
            del self._pending[g]
        return len(old)


# --------------------------------------------------------------------------------------
# Delivery receipts and message ids
# --------------------------------------------------------------------------------------

#: SMPP 3.4 message_state values by receipt ``stat`` name
MESSAGE_STATES = {
    "ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4,
    "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8,
}
_STAT_BY_STATE = {v: k for k, v in MESSAGE_STATES.items()}
_STAT_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD",
                 "ACCEPTED": "ACCEPTD", "EXPIRD": "EXPIRED", "DELETD": "DELETED"}


def message_state(stat: str) -> int:
    """Receipt ``stat`` (``DELIVRD``, also long forms like ``DELIVERED``) -> message_state
    (7 = UNKNOWN for anything else)."""
    s = (stat or "").strip().upper()
    return MESSAGE_STATES.get(_STAT_ALIASES.get(s, s), 7)


def stat_name(state: int) -> str:
    """message_state -> receipt stat name (``UNKNOWN`` for unknown values)."""
    return _STAT_BY_STATE.get(state, "UNKNOWN")


def _receipt_date(value: datetime | str | None) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        return value.strftime("%y%m%d%H%M")
    return str(value)


def format_receipt(message_id: str, stat: str = "DELIVRD", err: int | str = 0, text: str = "", *,
                   submit_date: datetime | str | None = None, done_date: datetime | str | None = None,
                   sub: int = 1, dlvrd: int | None = None) -> str:
    """The de-facto standard receipt text (SMPP 3.4 appendix B):

    ``id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD
    err:000 text:<first 20 chars>``. ``dlvrd`` defaults to ``sub`` when ``stat`` is DELIVRD,
    else 0; dates default to now (UTC); ``err`` is zero-padded to 3 digits when an int.
    """
    if dlvrd is None:
        dlvrd = sub if stat == "DELIVRD" else 0
    err_s = f"{err:03d}" if isinstance(err, int) else str(err)
    return (f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d} "
            f"submit date:{_receipt_date(submit_date)} done date:{_receipt_date(done_date)} "
            f"stat:{stat} err:{err_s} text:{(text or '')[:20]}")


RECEIPT_FIELDS = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text")
_RECEIPT_FIELD_RE = re.compile(
    r"(?:^|\s)(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err)\s*:\s*(\S*)", re.IGNORECASE)
_RECEIPT_TEXT_RE = re.compile(r"(?:^|\s)text\s*:", re.IGNORECASE)


def parse_receipt(text: str | bytes) -> dict[str, str | None]:
    """Parse a receipt text. Returns a dict with every key of :data:`RECEIPT_FIELDS`
    (``id``, ``sub``, ``dlvrd``, ``submit date``, ``done date``, ``stat``, ``err``, ``text``);
    missing fields are None. Keys are matched case-insensitively (``submit_date`` too);
    ``stat`` is upper-cased; ``text`` is everything after ``text:`` (it may contain colons).
    Use ``result["id"] is None`` to tell that the input was not a receipt.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    text = text or ""
    out: dict[str, str | None] = dict.fromkeys(RECEIPT_FIELDS)
    m = _RECEIPT_TEXT_RE.search(text)
    head = text
    if m:
        out["text"] = text[m.end():]
        head = text[:m.start()]
    for key, value in _RECEIPT_FIELD_RE.findall(head):
        k = re.sub(r"[ _]*date", " date", key.lower())
        if out.get(k) is None:
            out[k] = value
    if out["stat"] is not None:
        out["stat"] = out["stat"].upper()
    return out


def normalise_message_id(message_id: str | int | None) -> str:
    """Canonical form for matching ids: stripped, lower-case, without leading zeros
    (``"0000ABcd "`` -> ``"abcd"``; ``"000"`` -> ``"0"``; None -> ``""``)."""
    if message_id is None:
        return ""
    s = str(message_id).strip().lower()
    if not s:
        return ""
    return s.lstrip("0") or "0"


def hex_to_dec(message_id: str) -> str | None:
    """``"1a"`` -> ``"26"``; None if the id is not hexadecimal."""
    s = str(message_id).strip()
    if not s or not re.fullmatch(r"[0-9a-fA-F]+", s):
        return None
    return str(int(s, 16))


def dec_to_hex(message_id: str) -> str | None:
    """``"26"`` -> ``"1a"``; None if the id is not decimal."""
    s = str(message_id).strip()
    if not s or not re.fullmatch(r"[0-9]+", s):
        return None
    return format(int(s), "x")


def receipt_id_keys(receipt_id: str, dlr_id_format: str = "auto") -> list[str]:
    """Normalised submit_sm_resp ids a receipt's id may stand for (lookup keys, best first).

    ``dlr_id_format`` as in CONTRACT section 6: ``same`` (receipt id equals the resp id after
    :func:`normalise_message_id`); ``hex`` (resp id hex, receipt id decimal); ``dec`` (resp id
    decimal, receipt id hex); ``auto`` (same, then either conversion). Store resp ids under
    ``normalise_message_id(resp_id)`` and look receipts up with these keys.
    """
    same = normalise_message_id(receipt_id)
    as_hex = dec_to_hex(receipt_id)  # receipt decimal, resp hex
    as_dec = hex_to_dec(receipt_id)  # receipt hex, resp decimal
    if dlr_id_format == "same":
        cands = [same]
    elif dlr_id_format == "hex":
        cands = [as_hex]
    elif dlr_id_format == "dec":
        cands = [as_dec]
    else:
        cands = [same, as_hex, as_dec]
    out: list[str] = []
    for c in cands:
        if c is not None:
            c = normalise_message_id(c)
            if c and c not in out:
                out.append(c)
    return out


# --------------------------------------------------------------------------------------
# Addresses and command_status
# --------------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")


def strip_plus(address: str) -> str:
    """Remove white space and one leading ``+``."""
    a = (address or "").strip()
    return a[1:] if a.startswith("+") else a


def source_ton_npi(address: str) -> tuple[int, int, str]:
    """Detect TON/NPI for a source address (CONTRACT section 6): returns ``(ton, npi, addr)``
    with ``addr`` as it goes on the wire.

    ``+digits`` or 9+ digits -> (1, 1) international; 3-8 digits -> (3, 1) short code
    (network specific); anything with a non-digit -> (5, 0) alphanumeric; 1-2 digits -> (0, 1).
    """
    a = (address or "").strip()
    plain = strip_plus(a)
    if _DIGITS.fullmatch(plain):
        if a.startswith("+") or len(plain) > 8:
            return 1, 1, plain
        if len(plain) >= 3:
            return 3, 1, plain
        return 0, 1, plain
    return 5, 0, plain


#: command_status -> SMPP 3.4 name (from smpplib.consts)
STATUS_NAMES: dict[int, str] = {
    value: name[len("SMPP_"):]
    for name, value in vars(smpplib.consts).items()
    if name.startswith("SMPP_ESME_") and isinstance(value, int)
}
_STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}

#: statuses the contract retries (section 5); the first two also pause the bind (section 8)
RETRYABLE_STATUSES = frozenset({0x58, 0x14, 0x08})
THROTTLING_STATUSES = frozenset({0x58, 0x14})


def status_name(status: int) -> str:
    """``0x58`` -> ``"ESME_RTHROTTLED"``; unknown codes -> ``"0x00000401"`` style."""
    name = STATUS_NAMES.get(status)
    return name if name is not None else f"0x{status:08X}"


def status_code(value: int | str) -> int:
    """Inverse of :func:`status_name`; also accepts ints, ``"0x0B"`` and ``"11"``.
    ``ValueError`` for unknown names."""
    if isinstance(value, int):
        return value
    s = str(value).strip()
    for name in (s.upper(), "ESME_" + s.upper()):
        if name in _STATUS_CODES:
            return _STATUS_CODES[name]
    try:
        return int(s, 0)
    except ValueError:
        raise ValueError(f"unknown command_status {value!r}") from None
