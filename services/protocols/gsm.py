"""GSM 03.38 (3GPP TS 23.038) 7-bit default alphabet, unpacked (one septet per octet).

Why not ``smpplib.gsm``: its table maps 0x5F to a backtick instead of ``§`` (so ``§`` cannot
be encoded and a backtick is wrongly accepted), has no form feed in the extension table, uses
backticks as filler (so ``str.index`` finds wrong positions), has no decoder at all, and its
splitter may cut an escape pair in two. This module is a small, exact replacement.

On SMPP with ``data_coding`` 0 each septet travels in its own octet (no packing); characters
of the extension table are sent as the escape septet 0x1B followed by their code and count
as two septets.

Shared by every SMSC protocol (SMPP, UCP/EMI, CIMD2) and the HTTP side:

* tables and codecs: :func:`is_gsm7`, :func:`septet_count`, :func:`gsm_encode`,
  :func:`gsm_decode`, :func:`decode_user_data` (payload + GSM DCS -> text, never raises);
* 7-bit packing (UCP alphanumeric originators): :func:`pack_septets`, :func:`unpack_septets`;
* splitting: :func:`ucs2_units`, :func:`chunk_text` (cuts between characters only, so an
  escape pair or a surrogate pair is never cut), :func:`plan_sms` (GSM if it fits, else UCS2;
  3GPP limits 160/153 septets and 70/67 UTF-16 units);
* concatenation UDH: :func:`concat_udh`, :func:`parse_concat_udh`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ESCAPE = 0x1B

#: The basic table, index = septet value. 0x1B is the escape to the extension table.
BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: The extension table: character -> septet that follows the escape.
EXTENSION_TABLE = {
    "\x0c": 0x0A,  # form feed
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

#: character -> encoded bytes (one or two octets)
_ENCODE: dict[str, bytes] = {ch: bytes([i]) for i, ch in enumerate(BASIC_TABLE) if i != ESCAPE}
_ENCODE.update({ch: bytes([ESCAPE, code]) for ch, code in EXTENSION_TABLE.items()})
#: character -> number of septets (1 or 2)
SEPTETS: dict[str, int] = {ch: len(b) for ch, b in _ENCODE.items()}

_DECODE_BASIC = {i: ch for i, ch in enumerate(BASIC_TABLE)}
_DECODE_EXT = {code: ch for ch, code in EXTENSION_TABLE.items()}

assert len(BASIC_TABLE) == 128


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the default alphabet or its extension."""
    enc = SEPTETS
    return all(ch in enc for ch in text)


def septet_count(text: str) -> int | None:
    """Number of septets ``text`` takes (extension characters count 2); None if not GSM."""
    total = 0
    enc = SEPTETS
    for ch in text:
        n = enc.get(ch)
        if n is None:
            return None
        total += n
    return total


def gsm_encode(text: str) -> bytes:
    """Encode to unpacked septets. Raises ``ValueError`` naming the first unencodable character."""
    enc = _ENCODE
    try:
        return b"".join([enc[ch] for ch in text])
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the GSM 03.38 alphabet") from None


def gsm_decode(data: bytes) -> str:
    """Decode unpacked septets; never raises.

    An escape followed by an unknown code gives the basic-table character (TS 23.038 says a
    receiver should do so); a trailing lone escape is dropped. Octets >= 0x80 mean the data is
    not unpacked GSM at all, so the whole payload is decoded as Latin-1 instead.
    """
    if any(b >= 0x80 for b in data):
        return data.decode("latin-1")
    out = []
    basic = _DECODE_BASIC
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == ESCAPE:
            if i + 1 >= n:
                break
            nxt = data[i + 1]
            ch = _DECODE_EXT.get(nxt)
            out.append(ch if ch is not None else basic[nxt] if nxt != ESCAPE else " ")
            i += 2
            continue
        out.append(basic[b])
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------
# Data coding schemes (3GPP TS 23.038 section 4)
# --------------------------------------------------------------------------------------

DCS_GSM7 = 0x00
DCS_IA5 = 0x01
DCS_BINARY = 0x02
DCS_LATIN1 = 0x03
DCS_BINARY2 = 0x04
DCS_UCS2 = 0x08


def _dcs_alphabet(dc: int) -> int:
    """Map a GSM DCS-style value (message classes etc.) onto 0 / 4 / 8 (-1: not such a value)."""
    if 0x10 <= dc <= 0x7F:  # general data coding / automatic deletion groups
        return {0: DCS_GSM7, 1: DCS_BINARY2, 2: DCS_UCS2}.get((dc >> 2) & 0x03, DCS_BINARY2)
    if dc & 0xF0 == 0xF0:  # data coding / message class
        return DCS_BINARY2 if dc & 0x04 else DCS_GSM7
    if dc & 0xF0 == 0xE0:  # MWI group, UCS2
        return DCS_UCS2
    return -1


def decode_user_data(payload: bytes, dcs: int) -> str:
    """Decode user data (UDH already removed) written in ``dcs``. Never raises.

    0 GSM 03.38 unpacked; 1 IA5/ASCII; 3 Latin-1; 8 UCS2 (UTF-16BE, so surrogate pairs
    decode to their character); 2/4 binary -> Latin-1; 6 ISO-8859-5; 7 ISO-8859-8; DCS-style
    values (0xF0.., 0x10..) by their alphabet bits; anything else: UTF-8 if valid, else Latin-1.
    """
    payload = bytes(payload or b"")
    dc = dcs or 0
    try:
        if dc == DCS_GSM7:
            return gsm_decode(payload)
        if dc in (DCS_IA5, DCS_LATIN1, DCS_BINARY, DCS_BINARY2):
            return payload.decode("latin-1")
        if dc == DCS_UCS2:
            return payload.decode("utf-16-be", errors="replace")
        if dc == 0x06:
            return payload.decode("iso-8859-5", errors="replace")
        if dc == 0x07:
            return payload.decode("iso-8859-8", errors="replace")
        alphabet = _dcs_alphabet(dc)
        if alphabet >= 0:
            return decode_user_data(payload, alphabet)
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1")
    except Exception:  # pragma: no cover - belt and braces: decoding must never raise
        return payload.decode("latin-1", errors="replace")


# --------------------------------------------------------------------------------------
# 7-bit packing (GSM 03.38 section 6.1.2.1)
# --------------------------------------------------------------------------------------


def pack_septets(septets: bytes) -> bytes:
    """Pack septets (values < 0x80) LSB first, 8 septets in 7 octets."""
    out = bytearray()
    acc, bits = 0, 0
    for s in septets:
        if s > 0x7F:
            raise ValueError(f"septet {s:#x} is larger than 7 bits")
        acc |= s << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int | None = None) -> bytes:
    """Unpack ``count`` septets (default: as many as ``data`` holds) from packed octets."""
    available = len(data) * 8 // 7
    count = available if count is None else min(count, available)
    out = bytearray()
    acc, bits, pos = 0, 0, 0
    while len(out) < count:
        if bits < 7:
            acc |= data[pos] << bits
            pos += 1
            bits += 8
        out.append(acc & 0x7F)
        acc >>= 7
        bits -= 7
    return bytes(out)


# --------------------------------------------------------------------------------------
# Splitting and the concatenation UDH
# --------------------------------------------------------------------------------------

#: (one message, one part of a concatenated message with an 8-bit reference UDH)
GSM7_LIMITS = (160, 153)
UCS2_LIMITS = (70, 67)


def ucs2_units(text: str) -> int:
    """UTF-16 code units of ``text`` (characters beyond the BMP take a surrogate pair)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _gsm_cost(ch: str) -> int:
    return SEPTETS[ch]


def _ucs2_cost(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def chunk_text(text: str, limit: int, cost: Callable[[str], int]) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` units, where ``cost(ch)`` is what one
    character takes. Cuts fall between characters, so a GSM escape pair (cost 2) or a UTF-16
    surrogate pair (cost 2) is never split."""
    chunks: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        c = cost(ch)
        if used + c > limit and i > start:
            chunks.append(text[start:i])
            start, used = i, 0
        used += c
    chunks.append(text[start:])
    return chunks


@dataclass(frozen=True)
class SmsPlan:
    """How a text goes out: ``coding`` is ``"gsm7"`` or ``"ucs2"``; ``chunks`` the text of
    each part (one chunk: no UDH needed)."""

    coding: str
    chunks: list[str]

    @property
    def total(self) -> int:
        return len(self.chunks)


def plan_sms(text: str, coding: str | None = None) -> SmsPlan:
    """Choose GSM 7-bit when every character fits (escapes count 2), else UCS2, and split
    by the 3GPP limits: one message up to 160 septets / 70 UTF-16 units, otherwise parts of
    at most 153 / 67 (room for a 6-octet concatenation UDH). ``coding`` forces ``gsm7`` or
    ``ucs2``; ``ValueError`` if the text does not fit or needs more than 255 parts."""
    if coding is None:
        coding = "gsm7" if is_gsm7(text) else "ucs2"
    if coding == "gsm7":
        units = septet_count(text)
        if units is None:
            gsm_encode(text)  # raises, naming the character
        single, multi = GSM7_LIMITS
        cost = _gsm_cost
    elif coding == "ucs2":
        units = ucs2_units(text)
        single, multi = UCS2_LIMITS
        cost = _ucs2_cost
    else:
        raise ValueError(f"unknown coding {coding!r} (gsm7 or ucs2)")
    if units <= single:
        return SmsPlan(coding, [text])
    chunks = chunk_text(text, multi, cost)
    if len(chunks) > 255:
        raise ValueError(f"message needs {len(chunks)} parts; at most 255 are possible")
    return SmsPlan(coding, chunks)


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """The 6-octet concatenation UDH, UDHL included: ``05 00 03 ref total seq``."""
    return bytes((5, 0x00, 3, ref & 0xFF, total, seq))


def parse_concat_udh(udh: bytes) -> tuple[int | None, int, int]:
    """``(ref, total, seq)`` from a UDH (UDHL included); IE 0x00 (8-bit) and 0x08 (16-bit
    reference) are understood, other IEs skipped; ``(None, 1, 1)`` without one. ``ValueError``
    when the UDH is inconsistent."""
    ref, total, seq, _, _ = split_udh(udh)
    return ref, total, seq


def split_udh(data: bytes) -> tuple[int | None, int, int, bytes, str]:
    """Split user data that starts with a UDH into ``(ref, total, seq, payload, kind)``;
    ``kind`` is ``udh8``, ``udh16`` or ``single`` (no concatenation IE). ``ValueError`` when
    the UDH length or an information element is inconsistent."""
    data = bytes(data or b"")
    if not data:
        raise ValueError("empty user data: no UDH")
    udhl = data[0]
    if udhl + 1 > len(data):
        raise ValueError(f"UDH length {udhl} exceeds the {len(data)}-octet message")
    header, payload = data[1:udhl + 1], data[udhl + 1:]
    ref, total, seq, kind = None, 1, 1, "single"
    pos = 0
    while pos + 2 <= len(header):
        iei, iedl = header[pos], header[pos + 1]
        ie = header[pos + 2:pos + 2 + iedl]
        if len(ie) != iedl:
            raise ValueError("truncated information element in UDH")
        if iei == 0x00 and iedl == 3:
            ref, total, seq, kind = ie[0], ie[1], ie[2], "udh8"
        elif iei == 0x08 and iedl == 4:
            ref, total, seq, kind = (ie[0] << 8) | ie[1], ie[2], ie[3], "udh16"
        pos += 2 + iedl
    return ref, total, seq, payload, kind
