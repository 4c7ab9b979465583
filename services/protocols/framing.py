"""STX ... ETX framing (and the 12-digit timestamps), shared by the UCP/EMI and CIMD2 codecs (both put one frame between
0x02 and 0x03 and ignore what lies between frames).

:class:`StxEtxReader` is a push parser: ``feed(data)`` returns, in order, each decoded frame
or the error raised while decoding it, so one bad frame never hides the good ones after it
and a session can answer each bad frame (UCP NACK, CIMD2 NACK 99). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

STX = 0x02
ETX = 0x03

T = TypeVar("T")


def parse_time12(value: str, layout: str) -> datetime | None:
    """A 12-digit timestamp (UCP ``DDMMYYhhmmss``, CIMD2 ``yyMMddhhmmss``; ``layout`` is the
    strptime form) -> naive datetime in SMSC local time; None when it is not one."""
    if not value or len(value) != 12 or not is_digits(value):
        return None
    try:
        return datetime.strptime(value, layout)
    except ValueError:
        return None


class StxEtxReader(Generic[T]):
    """Collect bytes, cut them into STX...ETX frames and decode each with ``decode``.

    ``decode(inner: bytes) -> T`` gets the bytes between STX and ETX and raises
    ``error_type`` on a malformed frame; that exception is returned in place of the frame.
    Bytes outside frames are dropped. A frame that is not closed within ``max_frame`` bytes,
    or that is interrupted by a new STX, yields an ``error_type`` and reading resumes at the
    next STX.
    """

    def __init__(self, decode: Callable[[bytes], T], error_type: type[Exception], max_frame: int):
        self._decode = decode
        self._error = error_type
        self._max = max_frame
        self._buf = bytearray()

    def __len__(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[T | Exception]:
        buf = self._buf
        buf += data
        out: list[T | Exception] = []
        while buf:
            start = buf.find(STX)
            if start < 0:
                buf.clear()
                break
            if start:
                del buf[:start]
            end = buf.find(ETX, 1)
            restart = buf.find(STX, 1, end if end >= 0 else len(buf))
            if restart >= 0:
                out.append(self._error(f"frame interrupted by a new STX after {restart - 1} bytes"))
                del buf[:restart]
                continue
            if end < 0:
                if len(buf) > self._max:
                    out.append(self._error(f"no ETX within {self._max} bytes; data dropped"))
                    buf.clear()
                break
            inner = bytes(buf[1:end])
            del buf[:end + 1]
            try:
                out.append(self._decode(inner))
            except self._error as exc:
                out.append(exc)
        return out


def is_digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit()` also accepts `¹` or `²` (a Latin-1 byte in a frame),
    which `int()` then refuses."""
    return text.isascii() and text.isdigit()
