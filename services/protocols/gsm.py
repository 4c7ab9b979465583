"""GSM 03.38 (3GPP TS 23.038) 7-bit default alphabet, unpacked (one septet per octet).

Why not ``smpplib.gsm``: its table maps 0x5F to a backtick instead of ``§`` (so ``§`` cannot
be encoded and a backtick is wrongly accepted), has no form feed in the extension table, uses
backticks as filler (so ``str.index`` finds wrong positions), has no decoder at all, and its
splitter may cut an escape pair in two. This module is a small, exact replacement.

On SMPP with ``data_coding`` 0 each septet travels in its own octet (no packing); characters
of the extension table are sent as the escape septet 0x1B followed by their code and count
as two septets.
"""

from __future__ import annotations

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
