"""UCP/EMI codec (CMG/LogicaCMG EMI-UCP 3.5-5.2), as Kannel 1.4.5's ``emi`` driver speaks it.

Pure: frames in, frames out, no I/O. Facts and vectors: ``shared/SMSC_PROTOCOLS.md`` §1 and §5.

Frames
    ``STX TRN/LEN/O|R/OT/field/.../CHK ETX``. :class:`Frame` is ``(trn, kind, ot, fields)``;
    :func:`encode_frame` writes LEN and the checksum (low byte of the sum of every byte after
    STX up to the last ``/``, 2 upper-case hex digits); :func:`decode_frame` checks both and
    raises :class:`UcpError` (with ``trn``/``ot`` when they could be read, and the EMI error
    code ``ec``: 01 checksum, 02 syntax) so the session can answer a NACK.
    :func:`frame_reader` returns a push parser (``feed(bytes) -> [Frame | UcpError]``).
    A result pairs with its operation by (TRN, OT); the SMSC numbers its own operations.

Operations (builders return a :class:`Frame`; pass it to :func:`encode_frame`)
    :func:`login` (OT 60, password IRA-hex), :func:`parse_login`; :func:`alert` (OT 31
    keep-alive); :func:`submit` (OT 51); :func:`mo` (OT 52); :func:`notification` (OT 53);
    :func:`ack` / :func:`nack` answer any operation (3 fields for the 50 series, else 2
    positive); :func:`parse_result` reads one into :class:`Result`. :func:`op_5x` /
    :func:`fields_5x` build and read the 33 fields of the 50 series by name (:data:`FIELDS_5X`).

Text
    :func:`message_fields` turns a text into one dict of 5x fields per part: ``MT=3`` with
    AMsg = hex of GSM 03.38 code points (escapes count 2) when the text fits GSM, else
    ``MT=4`` with NB, TMsg = UTF-16BE hex, MCLs 1 and XSer ``020108``; more than 160 septets /
    70 UTF-16 units go in parts (153 / 67) with the concatenation UDH in XSer type 01. Parts
    never cut an escape pair or a surrogate pair. :func:`read_user_data` decodes MT 2/3/4
    with XSer 01 (UDH) and 02 (DCS) into :class:`UserData`.

Addresses
    :func:`encode_oadc` (numeric -> OTOA 1139, ``+`` dropped; otherwise up to 11 GSM
    characters packed 7-bit -> OTOA 5039), :func:`decode_oadc` (either length convention:
    Kannel's useful semi-octets or go-gsm's ``2 * octets``; a trailing CR pad is dropped),
    :func:`recipient` (AdC: ``+`` dropped, digits only, at most 16).

Correlation and receipts
    :func:`split_adc_scts` reads the ACK's ``SM = <AdC>:<SCTS>``; the OT 53 carries the same
    SCTS and the recipient in OAdC. :func:`notification_status` maps ``Dst`` 0/1/2 to
    ``delivered`` / ``sent`` / ``failed`` (error ``dlr_<Rsn>``). :func:`format_scts` /
    :func:`parse_scts` handle ``DDMMYYhhmmss``. :data:`ERRORS` names the EMI error codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .framing import StxEtxReader, is_digits, parse_time12
from .gsm import (
    DCS_BINARY2,
    DCS_GSM7,
    DCS_UCS2,
    concat_udh,
    decode_user_data,
    gsm_encode,
    is_gsm7,
    pack_septets,
    parse_concat_udh,
    plan_sms,
    unpack_septets,
)

__all__ = [
    "UcpError", "Frame", "encode_frame", "decode_frame", "frame_reader", "checksum",
    "OT_ALERT", "OT_SUBMIT", "OT_MO", "OT_NOTIFICATION", "OT_LOGIN", "OT_CALL_INPUT",
    "FIELDS_5X", "op_5x", "fields_5x", "login", "parse_login", "alert", "submit", "mo",
    "notification", "ack", "nack", "Result", "parse_result", "split_adc_scts",
    "message_fields", "UserData", "read_user_data", "parse_xser", "xser_item",
    "encode_oadc", "decode_oadc", "recipient", "format_scts", "parse_scts",
    "notification_status", "ERRORS", "EC_CHECKSUM", "EC_SYNTAX", "EC_NOT_SUPPORTED",
    "EC_AUTHENTICATION", "MAX_TRN",
]

#: A frame's LEN has 5 digits.
MAX_FRAME = 99_999
#: TRNs are 2 digits: at most 100 operations outstanding.
MAX_TRN = 99

OT_CALL_INPUT = 1
OT_ALERT = 31
OT_SUBMIT = 51
OT_MO = 52
OT_NOTIFICATION = 53
OT_LOGIN = 60

EC_CHECKSUM = "01"
EC_SYNTAX = "02"
EC_NOT_SUPPORTED = "03"
EC_AUTHENTICATION = "07"

#: EMI error codes (Kannel ``emi_strerror``)
ERRORS = {
    "01": "checksum error", "02": "syntax error", "03": "operation not supported by system",
    "04": "operation not allowed", "05": "call barring active", "06": "AdC invalid",
    "07": "authentication failure", "08": "legitimisation code for all calls, failure",
    "09": "GA not valid", "10": "repetition not allowed", "11": "legitimisation code for repetition, failure",
    "12": "priority call not allowed", "13": "legitimisation code for priority call, failure",
    "14": "urgent message not allowed", "15": "legitimisation code for urgent message, failure",
    "16": "reverse charging not allowed", "17": "legitimisation code for reverse charging, failure",
    "18": "deferred delivery not allowed", "19": "new AC not valid", "20": "new legitimisation code not valid",
    "21": "standard text not valid", "22": "time period not valid",
    "23": "message type not supported by system", "24": "message too long",
    "25": "requested standard text not valid", "26": "message type not valid for the pager type",
    "27": "message not found in SMSC", "30": "subscriber hang-up", "31": "fax group not supported",
    "32": "fax message type not supported", "33": "address already in list (60 series)",
    "34": "address not in list (60 series)", "35": "list full, cannot add address (60 series)",
    "36": "RPID already in use", "37": "delivery in progress", "38": "message forwarded",
}

#: The 33 fields of the 50 series (OT 51-58), in order (Kannel ``emimsg.h``).
FIELDS_5X = (
    "AdC", "OAdC", "AC", "NRq", "NAdC", "NT", "NPID", "LRq", "LRAd", "LPID", "DD", "DDT", "VP",
    "RPID", "SCTS", "Dst", "Rsn", "DSCTS", "MT", "NB", "Msg", "MMS", "PR", "DCS", "MCLs", "RPI",
    "CPg", "RPLy", "OTOA", "HPLMN", "XSer", "RES4", "RES5",
)
_INDEX_5X = {name: i for i, name in enumerate(FIELDS_5X)}
#: Positive results of these OTs carry ``A/MVP/SM``; others ``A/SM`` (Kannel ``field_count_reply``).
_THREE_FIELD_ACK = frozenset(range(50, 60))

_LOGIN_FIELDS = ("OAdC", "OTON", "ONPI", "STYP", "PWD", "NPWD", "VERS", "LAdC", "LTON", "LNPI", "OPID", "RES1")


class UcpError(ValueError):
    """A frame or field that cannot be used. ``trn``/``ot`` are set when the frame header
    could be read (so the session can NACK it); ``ec`` is the EMI error code to answer with
    (``01`` checksum, ``02`` syntax, ...)."""

    def __init__(self, message: str, *, trn: int | None = None, ot: int | None = None,
                 kind: str | None = None, ec: str = EC_SYNTAX):
        super().__init__(message)
        self.trn = trn
        self.ot = ot
        self.kind = kind
        self.ec = ec


@dataclass(frozen=True)
class Frame:
    """One UCP frame: ``kind`` is ``"O"`` (operation) or ``"R"`` (result)."""

    trn: int
    kind: str
    ot: int
    fields: tuple[str, ...] = ()

    @property
    def is_result(self) -> bool:
        return self.kind == "R"

    def field(self, index: int) -> str:
        """Field ``index`` ('' when absent)."""
        return self.fields[index] if 0 <= index < len(self.fields) else ""


def checksum(data: bytes) -> str:
    """UCP checksum of ``data`` (everything after STX up to and including the last ``/``)."""
    return f"{sum(data) & 0xFF:02X}"


def encode_frame(frame: Frame) -> bytes:
    """Frame -> bytes with STX, LEN, checksum and ETX. ``UcpError`` on values that cannot
    travel (a field holding ``/``, STX or ETX; TRN or OT out of range; non-Latin-1 text)."""
    if not 0 <= frame.trn <= MAX_TRN:
        raise UcpError(f"TRN {frame.trn} is not 00..99")
    if frame.kind not in ("O", "R"):
        raise UcpError(f"kind {frame.kind!r} is not O or R")
    if not 0 <= frame.ot <= 99:
        raise UcpError(f"OT {frame.ot} is not 00..99")
    body = "/".join(frame.fields) + "/" if frame.fields else ""
    if body.count("/") != len(frame.fields) or "\x02" in body or "\x03" in body:
        bad = next(i for i, v in enumerate(frame.fields) if "/" in v or "\x02" in v or "\x03" in v)
        raise UcpError(f"field {bad} contains '/', STX or ETX: {frame.fields[bad]!r}")
    length = 14 + len(body) + 2
    if length > MAX_FRAME:
        raise UcpError(f"frame of {length} characters exceeds LEN's 5 digits")
    try:
        raw = f"{frame.trn:02d}/{length:05d}/{frame.kind}/{frame.ot:02d}/{body}".encode("latin-1")
    except UnicodeEncodeError as exc:
        raise UcpError(f"field holds a character UCP cannot carry: {exc}") from None
    return b"\x02" + raw + checksum(raw).encode() + b"\x03"


def decode_frame(data: bytes) -> Frame:
    """Bytes of one frame (with or without STX/ETX) -> :class:`Frame`.

    Checks the header (2-digit TRN, 5-digit LEN equal to the actual length, O or R, 2-digit
    OT) and the checksum; raises :class:`UcpError` saying what is wrong.
    """
    raw = bytes(data)
    if raw[:1] == b"\x02":
        raw = raw[1:]
    if raw[-1:] == b"\x03":
        raw = raw[:-1]
    text = raw.decode("latin-1")
    parts = text.split("/")
    trn = int(parts[0]) if len(parts[0]) == 2 and is_digits(parts[0]) else None
    ot = int(parts[3]) if len(parts) > 3 and len(parts[3]) == 2 and is_digits(parts[3]) else None
    kind = parts[2] if len(parts) > 2 and parts[2] in ("O", "R") else None
    if len(parts) < 5:
        raise UcpError(f"not a UCP frame (too few fields): {text[:40]!r}", trn=trn, ot=ot, kind=kind)
    if trn is None:
        raise UcpError(f"TRN {parts[0]!r} is not 2 digits", ot=ot, kind=kind)
    if ot is None:
        raise UcpError(f"OT {parts[3]!r} is not 2 digits", trn=trn, kind=kind)
    if kind is None:
        raise UcpError(f"O/R field is {parts[2]!r}", trn=trn, ot=ot)
    if len(parts[1]) != 5 or not is_digits(parts[1]):
        raise UcpError(f"LEN {parts[1]!r} is not 5 digits", trn=trn, ot=ot, kind=kind)
    if int(parts[1]) != len(raw):
        raise UcpError(f"LEN says {int(parts[1])} but the frame has {len(raw)} characters",
                       trn=trn, ot=ot, kind=kind)
    chk = parts[-1]
    if len(chk) != 2:
        raise UcpError(f"checksum {chk!r} is not 2 hex digits", trn=trn, ot=ot, kind=kind)
    expected = checksum(raw[:-2])
    if chk.upper() != expected:
        raise UcpError(f"checksum {chk!r} should be {expected}", trn=trn, ot=ot, kind=kind, ec=EC_CHECKSUM)
    return Frame(trn, kind, ot, tuple(parts[4:-1]))


def frame_reader(max_frame: int = MAX_FRAME + 2) -> StxEtxReader[Frame]:
    """A push parser: ``reader.feed(data)`` -> list of :class:`Frame` or :class:`UcpError`."""
    return StxEtxReader(decode_frame, UcpError, max_frame)


# --------------------------------------------------------------------------------------
# Operations and results
# --------------------------------------------------------------------------------------


def op_5x(trn: int, ot: int, kind: str = "O", **values: str) -> Frame:
    """A 50-series frame from field names (:data:`FIELDS_5X`); absent fields are empty."""
    fields = [""] * len(FIELDS_5X)
    for name, value in values.items():
        if name not in _INDEX_5X:
            raise UcpError(f"unknown 5x field {name!r}")
        fields[_INDEX_5X[name]] = "" if value is None else str(value)
    return Frame(trn, kind, ot, tuple(fields))


def fields_5x(frame: Frame) -> dict[str, str]:
    """The 33 fields of a 50-series operation by name; ``UcpError`` if the count differs."""
    if len(frame.fields) != len(FIELDS_5X):
        raise UcpError(f"OT {frame.ot:02d} has {len(frame.fields)} fields, {len(FIELDS_5X)} expected",
                       trn=frame.trn, ot=frame.ot, kind=frame.kind)
    return dict(zip(FIELDS_5X, frame.fields, strict=True))


def _ira_hex(text: str) -> str:
    try:
        return text.encode("latin-1").hex().upper()
    except UnicodeEncodeError:
        raise UcpError("password must be IRA (Latin-1) text") from None


def login(trn: int, username: str, password: str, *, oton: str = "6", onpi: str = "5",
          styp: str = "1", vers: str = "0100") -> Frame:
    """OT 60 open session as Kannel sends it: OAdC = username, OTON 6 (abbreviated), ONPI 5
    (private), STYP 1, PWD = IRA-hex of the password, VERS 0100."""
    values = {"OAdC": username, "OTON": oton, "ONPI": onpi, "STYP": styp,
              "PWD": _ira_hex(password), "VERS": vers}
    return Frame(trn, "O", OT_LOGIN, tuple(values.get(name, "") for name in _LOGIN_FIELDS))


def parse_login(frame: Frame) -> tuple[str, str]:
    """``(username, password)`` of an OT 60 (the password decoded from IRA-hex)."""
    if frame.ot != OT_LOGIN or len(frame.fields) != len(_LOGIN_FIELDS):
        raise UcpError(f"not an OT 60 with {len(_LOGIN_FIELDS)} fields", trn=frame.trn, ot=frame.ot, kind=frame.kind)
    try:
        password = bytes.fromhex(frame.fields[4]).decode("latin-1")
    except ValueError:
        raise UcpError("PWD is not hex", trn=frame.trn, ot=frame.ot, kind=frame.kind) from None
    return frame.fields[0], password


def alert(trn: int, adc: str, pid: str = "0539") -> Frame:
    """OT 31 alert, used as keep-alive (PID 0539: PC application over TCP/IP)."""
    return Frame(trn, "O", OT_ALERT, (adc, pid))


def ack(op: Frame, sm: str = "", mvp: str = "") -> Frame:
    """Positive result for operation ``op``: ``A/MVP/SM`` for the 50 series, else ``A/SM``."""
    if op.ot in _THREE_FIELD_ACK:
        return Frame(op.trn, "R", op.ot, ("A", mvp, sm))
    return Frame(op.trn, "R", op.ot, ("A", sm))


def nack(op: Frame | UcpError, ec: str, sm: str = "") -> Frame:
    """Negative result ``N/EC/SM`` for ``op`` (a frame, or a :class:`UcpError` whose header
    could be read)."""
    if op.trn is None or op.ot is None:
        raise UcpError("cannot answer a frame whose TRN and OT are unknown")
    return Frame(op.trn, "R", op.ot, ("N", f"{int(ec):02d}", sm))


@dataclass(frozen=True)
class Result:
    """A parsed result: ``ok`` (A) or not (N, with ``ec``); ``sm`` is the system message."""

    trn: int
    ot: int
    ok: bool
    ec: str | None = None
    mvp: str = ""
    sm: str = ""

    @property
    def error(self) -> str | None:
        """``ucp_<EC>`` for a negative result (CONTRACT §11), else None."""
        return None if self.ok else f"ucp_{self.ec}"


def parse_result(frame: Frame) -> Result:
    """An ``R`` frame -> :class:`Result`; ``UcpError`` when it is neither A nor N."""
    if not frame.is_result:
        raise UcpError("not a result frame", trn=frame.trn, ot=frame.ot, kind=frame.kind)
    f = frame.fields
    ack_flag = f[0] if f else ""
    if ack_flag == "A":
        if len(f) >= 3:
            return Result(frame.trn, frame.ot, True, mvp=f[1], sm=f[2])
        return Result(frame.trn, frame.ot, True, sm=f[1] if len(f) > 1 else "")
    if ack_flag == "N":
        if len(f) < 2 or not f[1]:
            raise UcpError("NACK without an error code", trn=frame.trn, ot=frame.ot, kind=frame.kind)
        return Result(frame.trn, frame.ot, False, ec=f[1], sm=f[2] if len(f) > 2 else "")
    raise UcpError(f"result flag {ack_flag!r} is neither A nor N", trn=frame.trn, ot=frame.ot, kind=frame.kind)


def split_adc_scts(sm: str) -> tuple[str, str] | None:
    """``"012234:090996101010"`` -> ``("012234", "090996101010")``; None without ``:``."""
    adc, sep, scts = (sm or "").rpartition(":")
    if not sep or not scts:
        return None
    return adc, scts


# --------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------

OTOA_INTERNATIONAL = "1139"
OTOA_ALPHANUMERIC = "5039"


def recipient(address: str) -> str:
    """AdC for ``address``: leading ``+`` dropped; ``UcpError`` unless 1-16 digits remain."""
    adc = (address or "").strip().removeprefix("+")
    if not is_digits(adc) or len(adc) > 16:
        raise UcpError(f"recipient {address!r} is not 1-16 digits")
    return adc


def encode_oadc(sender: str) -> tuple[str, str]:
    """``(OAdC, OTOA)`` for a sender: 1-16 digits (``+`` dropped) -> OTOA 1139; anything else
    is alphanumeric: characters outside GSM 03.38 become ``?``, at most 11 characters (an
    extension character counts 2), packed 7-bit behind the useful-semi-octet count -> 5039."""
    plain = (sender or "").strip()
    digits = plain.removeprefix("+")
    if is_digits(digits) and len(digits) <= 16:
        return digits, OTOA_INTERNATIONAL
    if not plain:
        raise UcpError("empty sender")
    safe = "".join(ch if is_gsm7(ch) else "?" for ch in plain)
    septets = b""
    for ch in safe:
        code = gsm_encode(ch)
        if len(septets) + len(code) > 11:
            break
        septets += code
    semi_octets = (len(septets) * 7 + 3) // 4
    return f"{semi_octets:02X}{pack_septets(septets).hex().upper()}", OTOA_ALPHANUMERIC


def _looks_packed(oadc: str) -> bool:
    if len(oadc) < 4 or len(oadc) % 2:
        return False
    try:
        data = bytes.fromhex(oadc)
    except ValueError:
        return False
    return data[0] * 4 // 7 <= (len(data) - 1) * 8 // 7 and data[0] > 0


def decode_oadc(oadc: str, otoa: str = "") -> str:
    """A received OAdC as text. With OTOA 5039 (or, without OTOA, a non-numeric value that
    parses as packed) it is unpacked: characters = semi-octets * 4 // 7, which reads both
    Kannel's length and go-gsm's ``2 * octets``; a trailing CR pad is dropped. Anything that
    does not unpack is returned unchanged. Never raises."""
    oadc = (oadc or "").strip()
    packed = otoa == OTOA_ALPHANUMERIC or (not otoa and not is_digits(oadc) and _looks_packed(oadc))
    if not packed:
        return oadc
    try:
        data = bytes.fromhex(oadc)
    except ValueError:
        return oadc
    if len(data) < 2:
        return oadc
    septets = unpack_septets(data[1:], data[0] * 4 // 7)
    text = decode_user_data(septets, DCS_GSM7)
    return text[:-1] if text.endswith("\r") else text


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def xser_item(kind: int, data: bytes) -> str:
    """One XSer item ``TT LL DD..`` as hex."""
    if len(data) > 255:
        raise UcpError("XSer item longer than 255 octets")
    return f"{kind:02X}{len(data):02X}{data.hex().upper()}"


def parse_xser(xser: str) -> dict[int, bytes]:
    """XSer hex -> ``{type: data}``; ``UcpError`` when it is not well-formed."""
    try:
        raw = bytes.fromhex(xser or "")
    except ValueError:
        raise UcpError(f"XSer {xser[:40]!r} is not hex") from None
    items: dict[int, bytes] = {}
    pos = 0
    while pos < len(raw):
        if pos + 2 > len(raw):
            raise UcpError("XSer item truncated")
        kind, length = raw[pos], raw[pos + 1]
        data = raw[pos + 2:pos + 2 + length]
        if len(data) != length:
            raise UcpError(f"XSer item {kind:02X} says {length} octets, {len(data)} present")
        items[kind] = data
        pos += 2 + length
    return items


def message_fields(text: str, ref: int = 0, coding: str | None = None) -> list[dict[str, str]]:
    """The 5x fields (``MT``, ``NB``, ``Msg``, ``MCLs``, ``XSer``) of each part of ``text``.

    GSM when it fits (``coding`` may force ``gsm7`` or ``ucs2``), else UCS2; parts carry the
    concatenation UDH ``050003<ref><total><seq>`` as XSer type 01. ``ValueError`` when the
    text needs more than 255 parts or does not fit the forced coding.
    """
    plan = plan_sms(text, coding)
    parts = []
    for seq, chunk in enumerate(plan.chunks, start=1):
        xser = xser_item(0x01, concat_udh(ref, plan.total, seq)) if plan.total > 1 else ""
        if plan.coding == "gsm7":
            parts.append({"MT": "3", "NB": "", "Msg": gsm_encode(chunk).hex().upper(), "MCLs": "",
                          "XSer": xser})
        else:
            payload = chunk.encode("utf-16-be")
            parts.append({"MT": "4", "NB": f"{len(payload) * 8:04d}", "Msg": payload.hex().upper(),
                          "MCLs": "1", "XSer": xser + xser_item(0x02, bytes((DCS_UCS2,)))})
    return parts


@dataclass(frozen=True)
class UserData:
    """What a 5x operation's message fields say: ``payload`` in ``dcs`` (UDH removed),
    ``text`` decoded; ``ref``/``total``/``seq`` from a concatenation UDH (None/1/1 without)."""

    text: str
    payload: bytes
    dcs: int
    udh: bytes = b""
    ref: int | None = None
    total: int = 1
    seq: int = 1
    xser: dict[int, bytes] = field(default_factory=dict)


def read_user_data(fields: dict[str, str]) -> UserData:
    """Decode the message of 5x fields (see :func:`fields_5x`).

    MT 2: the digits themselves. MT 3: AMsg is hex of GSM 03.38 code points (as Kannel
    sends; bytes >= 0x80 fall back to Latin-1). MT 4: TMsg hex cut to NB bits, coded per the
    XSer 02 DCS (else the DCS field: 1 means 8-bit), UCS2 for DCS 8. XSer 01 gives the UDH.
    ``UcpError`` on a bad MT, hex or XSer.
    """
    mt = fields.get("MT", "")
    msg = fields.get("Msg", "")
    xser = parse_xser(fields.get("XSer", ""))
    udh = xser.get(0x01, b"")
    ref, total, seq = None, 1, 1
    if udh:
        try:
            ref, total, seq = parse_concat_udh(udh)
        except ValueError as exc:
            raise UcpError(f"XSer UDH: {exc}") from None
    if mt == "2":
        if msg and not is_digits(msg):
            raise UcpError("MT 2 message is not digits")
        return UserData(msg, msg.encode(), DCS_GSM7, udh, ref, total, seq, xser)
    try:
        payload = bytes.fromhex(msg)
    except ValueError:
        raise UcpError(f"MT {mt} message is not hex") from None
    if mt == "3":
        return UserData(decode_user_data(payload, DCS_GSM7), payload, DCS_GSM7, udh, ref, total, seq, xser)
    if mt == "4":
        nb = fields.get("NB", "")
        if nb:
            if not is_digits(nb):
                raise UcpError(f"NB {nb!r} is not a number")
            payload = payload[:(int(nb) + 7) // 8]
        if 0x02 in xser and xser[0x02]:
            dcs = xser[0x02][0]
        else:
            dcs = DCS_BINARY2
        return UserData(decode_user_data(payload, dcs), payload, dcs, udh, ref, total, seq, xser)
    raise UcpError(f"message type MT={mt!r} is not supported (2, 3 or 4)")


# --------------------------------------------------------------------------------------
# Submit, MO, notification
# --------------------------------------------------------------------------------------


def submit(trn: int, to: str, sender: str, part: dict[str, str], *, notify: int = 0,
           **extra: str) -> Frame:
    """OT 51 for one part (from :func:`message_fields`). ``notify`` is the NT bitmask
    (1 delivered, 2 non-delivered, 4 buffered; 3 asks for delivered and failed); 0 asks for
    no notification. ``extra``: further 5x fields by name (e.g. ``VP``)."""
    oadc, otoa = encode_oadc(sender)
    values = {"AdC": recipient(to), "OAdC": oadc, "OTOA": otoa, **part, **extra}
    if notify:
        values["NRq"] = "1"
        values["NT"] = str(notify)
    return op_5x(trn, OT_SUBMIT, **values)


def mo(trn: int, to: str, sender: str, scts: str, part: dict[str, str]) -> Frame:
    """OT 52 (SMSC -> client): ``to`` is the short code / number (AdC), ``sender`` the
    handset (OAdC; alphanumeric senders packed with OTOA 5039)."""
    oadc, otoa = encode_oadc(sender)
    otoa = otoa if otoa == OTOA_ALPHANUMERIC else ""
    return op_5x(trn, OT_MO, AdC=recipient(to), OAdC=oadc, SCTS=scts, OTOA=otoa, **part)


def notification(trn: int, adc: str, handset: str, scts: str, dst: int, rsn: str = "000",
                 dscts: str = "", text: str = "") -> Frame:
    """OT 53 (SMSC -> client): ``adc`` is the original originator, ``handset`` the original
    recipient, ``scts`` the one the submit's ACK carried, ``dst`` 0 delivered / 1 buffered /
    2 not delivered, ``rsn`` the 3-digit reason; ``text`` goes as MT 3 (GSM)."""
    safe = text if is_gsm7(text) else "".join(ch if is_gsm7(ch) else "?" for ch in text)
    return op_5x(trn, OT_NOTIFICATION, AdC=adc, OAdC=handset, SCTS=scts, Dst=str(dst),
                 Rsn=rsn, DSCTS=dscts, MT="3", Msg=gsm_encode(safe).hex().upper())


def notification_status(fields: dict[str, str]) -> tuple[str, str | None]:
    """``(status, error)`` of an OT 53 (CONTRACT §11): Dst 0 -> delivered, 1 -> sent,
    2 -> failed with ``dlr_<Rsn>``. ``UcpError`` for any other Dst."""
    dst = fields.get("Dst", "")
    if dst == "0":
        return "delivered", None
    if dst == "1":
        return "sent", None
    if dst == "2":
        return "failed", f"dlr_{fields.get('Rsn') or '000'}"
    raise UcpError(f"notification Dst {dst!r} is not 0, 1 or 2")


def format_scts(moment: datetime) -> str:
    """``DDMMYYhhmmss`` (SCTS, DSCTS)."""
    return moment.strftime("%d%m%y%H%M%S")


def parse_scts(value: str) -> datetime | None:
    """``DDMMYYhhmmss`` -> naive datetime (SMSC local time); None when it is not one."""
    return parse_time12(value, "%d%m%y%H%M%S")
