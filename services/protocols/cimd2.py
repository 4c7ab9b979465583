"""CIMD2 codec (Nokia CIMD 2.0), as Kannel 1.4.5's ``cimd2`` driver and ``test_cimd2`` speak it.

Pure: packets in, packets out, no I/O. Facts and vectors: ``shared/SMSC_PROTOCOLS.md`` §2 and §5.

Packets
    ``STX OC:PNN TAB {PPP:value TAB}* [CHK] ETX``. :class:`Packet` is ``(opcode, number,
    params)`` with ``params`` an ordered tuple of ``(code, value)`` (a code may repeat).
    :func:`encode_packet` appends the checksum (low byte of the sum of every byte *from STX*
    through the last TAB, 2 upper-case hex digits; unlike UCP, STX counts);
    :func:`decode_packet` checks it when present (packets without one are accepted) and raises
    :class:`Cimd2Error` with the packet number when it could be read, so the session can
    answer NACK 99. :func:`packet_reader` is a push parser (``feed(bytes) -> [Packet |
    Cimd2Error]``); bytes between packets are ignored.

Packet numbers
    :class:`PacketNumbers`: odd 001..255 then 001 again for the client, even 000..254 for the
    SMSC. A response has the request's number and opcode + 50 (:func:`response`).

Operations
    :func:`login` (01: 010 user, 011 password, optional 019 window), :func:`logout` (02),
    :func:`submit` (03), :func:`deliver_message` (20, MO), :func:`status_report` (23),
    :func:`alive` (40), :func:`response` (+50, with ``900``/``901`` on error), :func:`nack`
    (99), :func:`general_error` (98). :data:`ERRORS` names the ``900`` codes;
    :data:`TEMPORARY_ERRORS` are the ones worth retrying.

Text
    :func:`escape_text` / :func:`unescape_text`: the ``_xy`` table of parameter 033 (GSM
    code points written as 7-bit characters; ``€`` is ``_XXe``). :func:`message_params`
    gives each part's parameters: ``044`` (more to come), ``032`` (concatenation UDH, hex),
    ``033`` (escaped GSM text) or ``034`` (UTF-16BE hex) followed by ``030:8``. Parts hold at
    most 153 septets / 67 UTF-16 units and never cut an escape or surrogate pair.
    :func:`read_user_data` decodes 032/033/034/030 into :class:`UserData`.

Correlation and receipts
    The submit response's ``060`` (``yyMMddhhmmss``) with the destination ``021`` is the key
    the status report (23) repeats. :func:`report_status` maps ``061``: 4 -> delivered,
    1 -> sent, 2/3/5..9 -> failed ``dlr_<061>``. :func:`format_timestamp`,
    :func:`parse_timestamp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .framing import StxEtxReader, is_digits, parse_time12
from .gsm import (
    BASIC_TABLE,
    DCS_BINARY2,
    DCS_GSM7,
    DCS_LATIN1,
    DCS_UCS2,
    ESCAPE,
    EXTENSION_TABLE,
    concat_udh,
    decode_user_data,
    gsm_encode,
    is_gsm7,
    parse_concat_udh,
    plan_sms,
)

__all__ = [
    "Cimd2Error", "Packet", "encode_packet", "decode_packet", "packet_reader", "checksum",
    "PacketNumbers", "OP_LOGIN", "OP_LOGOUT", "OP_SUBMIT", "OP_DELIVER_MESSAGE",
    "OP_DELIVER_STATUS_REPORT", "OP_ALIVE", "OP_GENERAL_ERROR", "OP_NACK", "RESPONSE",
    "login", "logout", "submit", "deliver_message", "status_report", "alive", "response",
    "nack", "general_error", "escape_text", "unescape_text", "message_params", "UserData",
    "read_user_data", "report_status", "format_timestamp", "parse_timestamp", "ERRORS",
    "TEMPORARY_ERRORS", "sender_param",
]

OP_LOGIN = 1
OP_LOGOUT = 2
OP_SUBMIT = 3
OP_DELIVER_MESSAGE = 20
OP_DELIVER_STATUS_REPORT = 23
OP_ALIVE = 40
OP_GENERAL_ERROR = 98
OP_NACK = 99
#: a response's opcode is the request's plus this
RESPONSE = 50

P_USER = 10
P_PASSWORD = 11
P_WINDOW = 19
P_DESTINATION = 21
P_ORIGINATOR = 23
P_ALPHA_ORIGINATOR = 27
P_DCS = 30
P_UDH = 32
P_TEXT = 33
P_BINARY = 34
P_MORE = 44
P_REPLY_PATH = 55
P_STATUS_REPORT = 56
P_SCTS = 60
P_STATUS = 61
P_STATUS_ERROR = 62
P_DISCHARGE_TIME = 63
P_ERROR = 900
P_ERROR_TEXT = 901

#: ``056`` bits (delivery failed 4 + delivery successful 8 + validity expired 2), as Kannel asks
STATUS_REPORT_DEFAULT = 14

#: ``900`` error codes (Wireshark packet-cimd.c, Kannel)
ERRORS = {
    1: "unexpected operation", 2: "syntax error", 3: "unsupported parameter",
    4: "connection to SMSC lost", 5: "no response from SMSC", 6: "general system error",
    7: "cannot find information", 8: "parameter formatting error", 9: "requested operation failed",
    10: "temporary congestion error", 100: "invalid login", 101: "incorrect access type",
    102: "too many users with this login id", 103: "login refused by SMSC",
    104: "invalid window size", 105: "windowing disabled", 106: "virtual SMS center-based barring",
    107: "invalid subaddress", 108: "alias account, login refused",
    300: "incorrect destination address", 301: "incorrect number of destination addresses",
    302: "incorrect syntax in user data parameter", 303: "incorrect bin/head/normal user data parameter combination",
    304: "incorrect data coding scheme parameter usage", 305: "incorrect validity period parameters usage",
    306: "incorrect originator address usage", 307: "incorrect PID parameter usage",
    308: "incorrect first delivery parameter usage", 309: "incorrect reply path usage",
    310: "incorrect status report request parameter usage", 311: "incorrect cancel enabled parameter usage",
    312: "incorrect priority parameter usage", 313: "incorrect tariff class parameter usage",
    314: "incorrect service description parameter usage", 315: "incorrect transport type parameter usage",
    316: "incorrect message type parameter usage", 318: "incorrect MMS parameter usage",
    319: "incorrect operation timer parameter usage", 320: "incorrect dialogue ID parameter usage",
    321: "incorrect alpha originator address usage", 322: "invalid data for alpha numeric originator",
}
#: errors that say "later", not "never": temporary congestion and a lost SMSC link
TEMPORARY_ERRORS = frozenset({4, 10})

_MAX_PACKET = 64 * 1024


class Cimd2Error(ValueError):
    """A packet or parameter that cannot be used. ``number`` is the packet number when it
    could be read (the session answers NACK 99 with it); ``opcode`` likewise; ``code`` is
    the ``900`` error code that fits (2 syntax, 8 parameter formatting, ...)."""

    def __init__(self, message: str, *, opcode: int | None = None, number: int | None = None,
                 code: int = 2):
        super().__init__(message)
        self.opcode = opcode
        self.number = number
        self.code = code


@dataclass(frozen=True)
class Packet:
    """One CIMD2 packet; ``params`` keeps order and repeats."""

    opcode: int
    number: int
    params: tuple[tuple[int, str], ...] = ()

    def get(self, code: int, default: str | None = None) -> str | None:
        """The first value of parameter ``code`` (``default`` when absent)."""
        for c, v in self.params:
            if c == code:
                return v
        return default

    def get_all(self, code: int) -> list[str]:
        return [v for c, v in self.params if c == code]

    @property
    def is_response(self) -> bool:
        return self.opcode >= RESPONSE

    @property
    def error_code(self) -> str | None:
        """The ``900`` value as the SMSC wrote it (None without one)."""
        return self.get(P_ERROR)

    @property
    def error(self) -> str | None:
        """``cimd2_<900 code>`` (CONTRACT §11), else None."""
        code = self.error_code
        return None if code is None else f"cimd2_{code}"


def checksum(data: bytes) -> str:
    """CIMD2 checksum of ``data`` (STX through the last TAB)."""
    return f"{sum(data) & 0xFF:02X}"


def encode_packet(packet: Packet, with_checksum: bool = True) -> bytes:
    """Packet -> bytes (Latin-1). ``Cimd2Error`` when a value holds TAB, STX or ETX, a
    character outside Latin-1, or a number/code out of range."""
    if not 0 <= packet.opcode <= 99:
        raise Cimd2Error(f"opcode {packet.opcode} is not 00..99")
    if not 0 <= packet.number <= 999:
        raise Cimd2Error(f"packet number {packet.number} is not 000..999")
    out = [f"\x02{packet.opcode:02d}:{packet.number:03d}\t"]
    for code, value in packet.params:
        if not 0 <= code <= 999:
            raise Cimd2Error(f"parameter code {code} is not 000..999")
        out.append(f"{code:03d}:{value}\t")
    text = "".join(out)
    if text.count("\t") != len(out) or "\x02" in text[1:] or "\x03" in text:
        bad = next(c for c, v in packet.params if any(x in str(v) for x in "\t\x02\x03"))
        raise Cimd2Error(f"parameter {bad:03d} holds TAB, STX or ETX")
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise Cimd2Error(f"a parameter holds a character CIMD2 cannot carry: {exc}") from None
    if with_checksum:
        raw += checksum(raw).encode()
    return raw + b"\x03"


def _hex2(value: str) -> bool:
    return len(value) == 2 and all(c in "0123456789abcdefABCDEF" for c in value)


def decode_packet(data: bytes) -> Packet:
    """Bytes of one packet (with or without STX/ETX) -> :class:`Packet`.

    The checksum is checked when present; ``Cimd2Error`` says what is wrong (bad header,
    parameter without ``PPP:``, wrong checksum, trailing garbage).
    """
    raw = bytes(data)
    if raw[:1] == b"\x02":
        raw = raw[1:]
    if raw[-1:] == b"\x03":
        raw = raw[:-1]
    text = raw.decode("latin-1")
    fields = text.split("\t")
    head = fields[0]
    opcode = number = None
    if len(head) == 6 and head[2] == ":" and is_digits(head[:2]) and is_digits(head[3:]):
        opcode, number = int(head[:2]), int(head[3:])
    else:
        num = head[3:6]
        raise Cimd2Error(f"header {head[:12]!r} is not OC:PNN",
                         number=int(num) if len(head) >= 6 and is_digits(num) else None)
    if len(fields) == 1:  # "40:007" without any TAB: accepted, nothing to check
        return Packet(opcode, number)
    trailer = fields[-1]
    if trailer:
        if not _hex2(trailer):
            raise Cimd2Error(f"text after the last TAB is not a checksum: {trailer[:20]!r}",
                             opcode=opcode, number=number)
        expected = checksum(b"\x02" + raw[:len(raw) - 2])
        if trailer.upper() != expected:
            raise Cimd2Error(f"checksum {trailer!r} should be {expected}", opcode=opcode, number=number)
    params = []
    for item in fields[1:-1]:
        code, sep, value = item.partition(":")
        if not sep or len(code) != 3 or not is_digits(code):
            raise Cimd2Error(f"parameter {item[:20]!r} is not PPP:value", opcode=opcode, number=number)
        params.append((int(code), value))
    return Packet(opcode, number, tuple(params))


def packet_reader(max_packet: int = _MAX_PACKET) -> StxEtxReader[Packet]:
    """A push parser: ``reader.feed(data)`` -> list of :class:`Packet` or :class:`Cimd2Error`."""
    return StxEtxReader(decode_packet, Cimd2Error, max_packet)


class PacketNumbers:
    """Packet numbers: odd 1, 3 .. 255, 1 .. (client) or even 0, 2 .. 254, 0 .. (SMSC)."""

    def __init__(self, odd: bool = True):
        self._first = 1 if odd else 0
        self._next = self._first

    def next(self) -> int:
        n = self._next
        self._next = n + 2 if n + 2 <= 255 else self._first
        return n


# --------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------


def login(number: int, username: str, password: str, window: int | None = None) -> Packet:
    """01 login; ``window`` asks for windowing (parameter 019)."""
    params = [(P_USER, username), (P_PASSWORD, password)]
    if window is not None:
        params.append((P_WINDOW, str(window)))
    return Packet(OP_LOGIN, number, tuple(params))


def logout(number: int) -> Packet:
    return Packet(OP_LOGOUT, number)


def alive(number: int) -> Packet:
    return Packet(OP_ALIVE, number)


def response(request: Packet, params: tuple[tuple[int, str], ...] | list = (), *,
             error: int | str | None = None, error_text: str | None = None) -> Packet:
    """The response to ``request`` (opcode + 50, same number); ``error`` adds ``900`` (and
    ``901`` with ``error_text``)."""
    out = list(params)
    if error is not None:
        out.append((P_ERROR, str(error)))
        if error_text:
            out.append((P_ERROR_TEXT, error_text))
    return Packet(request.opcode + RESPONSE, request.number, tuple(out))


def nack(number: int) -> Packet:
    """99 NACK: the packet with this number was unreadable (checksum or syntax)."""
    return Packet(OP_NACK, number)


def general_error(number: int, code: int = 1, text: str | None = None) -> Packet:
    """98 general error response (e.g. 1: unexpected operation)."""
    params = [(P_ERROR, str(code))]
    if text:
        params.append((P_ERROR_TEXT, text))
    return Packet(OP_GENERAL_ERROR, number, tuple(params))


def sender_param(sender: str) -> tuple[int, str]:
    """``(023, digits)`` for a numeric sender (``+`` dropped, at most 20), else ``(027,
    text)``: alphanumeric, raw as Kannel sends it, at most 11 characters, characters that
    cannot travel replaced by ``?``."""
    plain = (sender or "").strip()
    digits = plain.removeprefix("+")
    if is_digits(digits) and len(digits) <= 20:
        return P_ORIGINATOR, digits
    if not plain:
        raise Cimd2Error("empty sender", code=306)
    safe = "".join(ch if ch.isprintable() and ord(ch) < 0x100 else "?" for ch in plain)
    return P_ALPHA_ORIGINATOR, safe[:11]


def _destination(address: str) -> str:
    dest = (address or "").strip().removeprefix("+")
    if not is_digits(dest) or len(dest) > 20:
        raise Cimd2Error(f"destination {address!r} is not 1-20 digits", code=300)
    return dest


def submit(number: int, to: str, sender: str, part: list[tuple[int, str]], *,
           status_report: int = 0, extra: list[tuple[int, str]] = ()) -> Packet:
    """03 submit for one part (from :func:`message_params`), in Kannel's parameter order:
    021, 023/027, 056, 055, then the part (044, 032, 033/034, 030). ``status_report`` is the
    056 bitmask (14 asks for delivered and failed; 0 for none). ``extra`` goes before the part."""
    params = [(P_DESTINATION, _destination(to)), sender_param(sender),
              (P_STATUS_REPORT, str(status_report)), (P_REPLY_PATH, "0"), *extra, *part]
    return Packet(OP_SUBMIT, number, tuple(params))


def deliver_message(number: int, to: str, sender: str, scts: str, part: list[tuple[int, str]]) -> Packet:
    """20 deliver message (MO) from the SMSC: ``to`` the service number (021), ``sender``
    the handset (023, or 027 when alphanumeric), ``scts`` (060)."""
    return Packet(OP_DELIVER_MESSAGE, number,
                  ((P_DESTINATION, _destination(to)), sender_param(sender), (P_SCTS, scts),
                   *[(c, v) for c, v in part if c != P_MORE]))


def status_report(number: int, to: str, scts: str, status: int, discharge: str,
                  error: int | None = None) -> Packet:
    """23 deliver status report: ``to`` (021) and ``scts`` (060) as the submit response
    said, ``status`` (061), the discharge time (063) and an optional error code (062)."""
    params = [(P_DESTINATION, to), (P_SCTS, scts), (P_STATUS, str(status))]
    if error is not None:
        params.append((P_STATUS_ERROR, str(error)))
    params.append((P_DISCHARGE_TIME, discharge))
    return Packet(OP_DELIVER_STATUS_REPORT, number, tuple(params))


def report_status(packet: Packet) -> tuple[str, str | None] | None:
    """``(status, error)`` of a 23 (CONTRACT §11): 061 4 -> delivered, 1 -> sent, 2/3/5..9
    -> failed ``dlr_<061>``; None for any other value (0 or unknown: nothing to report)."""
    code = (packet.get(P_STATUS) or "").strip()
    if not is_digits(code):
        return None
    value = int(code)
    if value == 4:
        return "delivered", None
    if value == 1:
        return "sent", None
    if value in (2, 3, 5, 6, 7, 8, 9):
        return "failed", f"dlr_{code}"
    return None


def format_timestamp(moment: datetime) -> str:
    """``yyMMddhhmmss`` (060, 063, 051, 054)."""
    return moment.strftime("%y%m%d%H%M%S")


def parse_timestamp(value: str) -> datetime | None:
    return parse_time12(value, "%y%m%d%H%M%S")


# --------------------------------------------------------------------------------------
# Text: the _xy escapes of parameter 033
# --------------------------------------------------------------------------------------

#: GSM basic-table code point -> its CIMD2 spelling where that is not the character itself
_SPECIAL = {
    "@": "_Oa", "£": "_L-", "¥": "_Y-", "è": "_e`", "é": "_e'", "ù": "_u`", "ì": "_i`",
    "ò": "_o`", "Ç": "_C,", "Ø": "_O/", "ø": "_o/", "Å": "_A*", "å": "_a*", "Δ": "_gd",
    "_": "_--", "Φ": "_gf", "Γ": "_gg", "Λ": "_gl", "Ω": "_go", "Π": "_gp", "Ψ": "_gi",
    "Σ": "_gs", "Θ": "_gt", "Ξ": "_gx", "\x1b": "_XX", "Æ": "_AE", "æ": "_ae", "ß": "_ss",
    "É": "_E'", '"': "_qq", "¤": "_ox", "¡": "_!!", "Ä": '_A"', "Ö": '_O"', "Ñ": "_N~",
    "Ü": '_U"', "§": "_so", "¿": "_??", "ä": '_a"', "ö": '_o"', "ñ": "_n~", "ü": '_u"',
    "à": "_a`",
}
#: septet -> its spelling in 033
_SEPTET_SPELLING = tuple(_SPECIAL.get(ch, ch) for ch in BASIC_TABLE)
#: 3-character escape -> septet
_ESCAPES = {spelling: BASIC_TABLE.index(ch) for ch, spelling in _SPECIAL.items()}
#: single characters that stand for a septet on input (Kannel also accepts these)
_ALIASES = {"@": 0x00, "$": 0x02, "]": 0x0E, "}": 0x0F}
_BASIC_INDEX = {ch: i for i, ch in enumerate(BASIC_TABLE) if i != ESCAPE}
_EXTENSION_BY_CODE = {code: ch for ch, code in EXTENSION_TABLE.items()}


def escape_text(text: str) -> str:
    """GSM text -> 033 spelling (``@$_é€[`` -> ``_Oa$_--_e'_XXe_XX<``). ``ValueError`` for
    a character outside GSM 03.38."""
    return "".join(_SEPTET_SPELLING[s] for s in gsm_encode(text))


def unescape_text(value: str) -> str:
    """033 spelling -> text. ``_xy`` escapes and ``_XX`` + base character (extension table)
    are decoded; ``@ $ ] }`` are read as Kannel reads them (``]`` = Å, ``}`` = å); other
    characters (including raw Latin-1) stand for themselves; an unknown ``_xy`` is kept as
    written. Never raises."""
    items: list[int | str] = []  # septets, or characters outside GSM that stand for themselves
    i, n = 0, len(value)
    while i < n:
        if value[i] == "_" and i + 3 <= n and value[i:i + 3] in _ESCAPES:
            items.append(_ESCAPES[value[i:i + 3]])
            i += 3
            continue
        ch = value[i]
        if ch in _ALIASES:
            items.append(_ALIASES[ch])
        elif ch in _BASIC_INDEX:
            items.append(_BASIC_INDEX[ch])
        else:
            items.append(ch)
        i += 1
    out: list[str] = []
    j = 0
    while j < len(items):
        item = items[j]
        if item == ESCAPE:
            nxt = items[j + 1] if j + 1 < len(items) else None
            j += 2
            if isinstance(nxt, int):
                out.append(_EXTENSION_BY_CODE.get(nxt, BASIC_TABLE[nxt] if nxt != ESCAPE else " "))
            elif isinstance(nxt, str):
                out.append(nxt)
            continue
        out.append(BASIC_TABLE[item] if isinstance(item, int) else item)
        j += 1
    return "".join(out)


def message_params(text: str, ref: int = 0, coding: str | None = None) -> list[list[tuple[int, str]]]:
    """The user-data parameters of each part of ``text``: ``044`` (1 on every part but the
    last), ``032`` UDH for parts, then ``033`` escaped GSM text, or ``034`` UTF-16BE hex
    followed by ``030:8`` (Kannel's order). ``ValueError`` past 255 parts."""
    plan = plan_sms(text, coding)
    parts = []
    for seq, chunk in enumerate(plan.chunks, start=1):
        params: list[tuple[int, str]] = [(P_MORE, "1" if seq < plan.total else "0")]
        if plan.total > 1:
            params.append((P_UDH, concat_udh(ref, plan.total, seq).hex().upper()))
        if plan.coding == "gsm7":
            params.append((P_TEXT, escape_text(chunk)))
        else:
            params.append((P_BINARY, chunk.encode("utf-16-be").hex().upper()))
            params.append((P_DCS, str(DCS_UCS2)))
        parts.append(params)
    return parts


@dataclass(frozen=True)
class UserData:
    """A packet's user data: ``payload`` in ``dcs`` (0 GSM septets for 033 text that fits
    GSM, 3 Latin-1 for 033 text that does not, else the 030 value for 034), ``text``
    decoded, concatenation from 032 (None/1/1 without)."""

    text: str
    payload: bytes
    dcs: int
    udh: bytes = b""
    ref: int | None = None
    total: int = 1
    seq: int = 1


def read_user_data(packet: Packet) -> UserData:
    """Decode 033 / 034 (+030) and 032 of a submit or deliver message. ``Cimd2Error`` on bad
    hex or UDH."""
    udh_hex = packet.get(P_UDH) or ""
    try:
        udh = bytes.fromhex(udh_hex)
    except ValueError:
        raise Cimd2Error("032 is not hex", opcode=packet.opcode, number=packet.number, code=302) from None
    ref, total, seq = None, 1, 1
    if udh:
        try:
            ref, total, seq = parse_concat_udh(udh)
        except ValueError as exc:
            raise Cimd2Error(f"032: {exc}", opcode=packet.opcode, number=packet.number, code=302) from None
    binary = packet.get(P_BINARY)
    if binary is not None:
        try:
            payload = bytes.fromhex(binary)
        except ValueError:
            raise Cimd2Error("034 is not hex", opcode=packet.opcode, number=packet.number, code=302) from None
        dcs_text = packet.get(P_DCS) or ""
        dcs = int(dcs_text) if is_digits(dcs_text) else DCS_BINARY2
        return UserData(decode_user_data(payload, dcs), payload, dcs, udh, ref, total, seq)
    text = unescape_text(packet.get(P_TEXT) or "")
    if is_gsm7(text):
        return UserData(text, gsm_encode(text), DCS_GSM7, udh, ref, total, seq)
    try:
        return UserData(text, text.encode("latin-1"), DCS_LATIN1, udh, ref, total, seq)
    except UnicodeEncodeError:  # pragma: no cover - 033 is read as Latin-1, so it fits
        return UserData(text, text.encode("utf-16-be"), DCS_UCS2, udh, ref, total, seq)
