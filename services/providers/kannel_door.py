"""Kannel's smsbox `sendsms`, seen from Kannel's side: what courier's KN handler sends us and
what it expects back (CONTRACT section 10, "Kannel door").

Three pieces of knowledge, all pure:

- `read_sendsms`: the request's parameters, read from the raw query bytes. Courier has sent
  unicode four ways over the years (`coding=2` with UTF-16BE bytes and no charset, `coding=2`
  with `charset=utf8`, `utf-8` or `UTF-16BE`), so a text is decoded only once its coding and
  charset are known; a UTF-8 `parse_qs` would turn UTF-16BE into mojibake.
- `dlr_types`: which Kannel delivery-report types a Switchboard status becomes, given what
  was already reported for the message (courier has no "only move forward" guard, so a late
  8 after a 1 would turn a delivered message back into sent).
- `fill_escapes`: Kannel's `%x` escapes in a `dlr-url` or an MO `get-url`; everything else of
  the URL is left exactly as it was given.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from ..protocols.gsm import plan_sms
from ..protocols.smpp import choose_coding, split_message
from .text import split_text, text_with_attachments

HTML = "text/html"
ACCEPTED = (202, "0: Accepted for delivery")
AUTH_FAILED = (403, "Authorization failed for sendsms")
NOT_ROUTABLE = (403, "Not routable. Do not try again.")
MISSING_TO = (400, "Missing receiver number, rejected")
EMPTY_TO = (400, "Empty receiver number not allowed, rejected")
BAD_CHARSET = (400, "Charset or body misformed, rejected")
TEMPORAL_FAILURE = (503, "Temporal failure, try again later.")

#: DLR types (Kannel's dlr-mask bits)
DELIVERED, UNDELIVERED, SENT, WIRED, REJECTED = 1, 2, 4, 8, 16
FINAL_TYPES = frozenset({DELIVERED, UNDELIVERED, REJECTED})

#: parameter -> its aliases, as smsbox reads them
_ALIASES = {"username": ("username", "user"), "password": ("password", "pass"),
            "dlr-url": ("dlr-url", "dlrurl"), "dlr-mask": ("dlr-mask", "dlrmask")}  # fmt: skip
#: numeric parameters smsbox range-checks: name -> (low, high)
_RANGES = {"coding": (0, 2), "dlr-mask": (-1, 63), "priority": (0, 3), "mclass": (0, 3), "pid": (0, 255),
           "alt-dcs": (0, 1), "validity": (-1, 2**31 - 1), "deferred": (-1, 2**31 - 1)}  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    """An answer other than 202: status and Kannel's text body."""

    status: int
    body: str


@dataclass(frozen=True)
class SendSms:
    """One sendsms request, decoded. `dlr_mask` 0 means no reports (also for -1 and absent)."""

    username: str
    password: str
    to: str
    text: str
    sender: str = ""
    dlr_url: str = ""
    dlr_mask: int = 0
    priority: int = 0
    coding: int = 0
    charset: str = ""
    smsc: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # account, binfo, meta-data, udh (for escapes)


def query_pairs(raw: bytes) -> dict[str, bytes]:
    """`a=1&b=%00H` -> {"a": b"1", "b": b"\\x00H"}: values as bytes, `+` as space, the first
    occurrence of a key wins (as smsbox's `http_cgi_variable` finds it)."""
    out: dict[str, bytes] = {}
    for piece in raw.split(b"&"):
        if not piece:
            continue
        key, _, value = piece.partition(b"=")
        name = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8", "replace")
        if name not in out:
            out[name] = unquote_to_bytes(value.replace(b"+", b" "))
    return out


def _field(name: str) -> Refusal:
    return Refusal(400, f"{name[0].upper()}{name[1:]} field misformed, rejected")


def _get(pairs: Mapping[str, bytes], name: str) -> bytes | None:
    for alias in _ALIASES.get(name, (name,)):
        if alias in pairs:
            return pairs[alias]
    return None


def _str(pairs: Mapping[str, bytes], name: str) -> str | Refusal:
    value = _get(pairs, name)
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return _field(name)


def decode_text(raw: bytes, coding: int, charset: str) -> str | None:
    """The text of a sendsms: from `charset` when given, UTF-16BE for `coding=2` without one,
    else UTF-8. None when the bytes do not decode (or the charset is unknown)."""
    if charset:
        name = charset.strip()
        if name.lower() in ("utf8", "utf-8"):
            name = "utf-8"
    elif coding == 2:
        name = "utf-16-be"
    else:
        name = "utf-8"
    try:
        codecs.lookup(name)
        return raw.decode(name)
    except (LookupError, UnicodeDecodeError):
        return None


def credentials(pairs: Mapping[str, bytes]) -> tuple[str, str]:
    """(username, password), aliases `user`/`pass` too; undecodable bytes never match a door."""
    return tuple((_get(pairs, name) or b"").decode("utf-8", "replace") for name in ("username", "password"))  # type: ignore[return-value]


def read_sendsms(pairs: Mapping[str, bytes]) -> SendSms | Refusal:
    """A sendsms request's parameters, checked as smsbox checks them (credentials are the
    caller's to check: they pick the door)."""
    numbers: dict[str, int] = {}
    for name, (low, high) in _RANGES.items():
        raw = _get(pairs, name)
        if raw is None or raw.strip() == b"":
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            return _field(name)
        if not low <= value <= high:
            return _field(name)
        numbers[name] = value
    strings: dict[str, str] = {}
    for name in ("username", "password", "from", "to", "dlr-url", "charset", "smsc", "account", "binfo", "meta-data"):
        value = _str(pairs, name)
        if isinstance(value, Refusal):
            return value
        strings[name] = value
    to_raw = _get(pairs, "to")
    if to_raw is None:
        return Refusal(*MISSING_TO)
    to = strings["to"].strip()
    if not to:
        return Refusal(*EMPTY_TO)
    coding = numbers.get("coding", 0)
    text = decode_text(_get(pairs, "text") or b"", coding, strings["charset"])
    if text is None:
        return Refusal(*BAD_CHARSET)
    udh = _get(pairs, "udh")
    mask = numbers.get("dlr-mask", 0)
    return SendSms(
        username=strings["username"], password=strings["password"], to=to, text=text, sender=strings["from"],
        dlr_url=strings["dlr-url"], dlr_mask=max(mask, 0), priority=numbers.get("priority", 0), coding=coding,
        charset=strings["charset"], smsc=strings["smsc"],
        extra={"account": strings["account"], "binfo": strings["binfo"], "meta-data": strings["meta-data"],
               "udh": udh.hex() if udh else ""},
    )  # fmt: skip


def too_long(parts: int, max_parts: int) -> Refusal:
    return Refusal(400, f"Message too long ({parts} parts, at most {max_parts}), rejected")


def parts_needed(channel, connection, text: str, attachments: list[str] = ()) -> int:
    """How many parts the channel's transport will send `text` in: SMPP splits as the SMPP
    connector does (GSM 03.38 septets, else UCS2; 153/67 per part with a UDH), UCP and CIMD2
    as their connectors do (GSM 03.38, else UCS2, by the same limits), HTTP
    transports by `max_length` UTF-8 bytes (external: 160 by default; REST: only when set)."""
    text = text_with_attachments(text, list(attachments))
    if channel.type == "smpp":
        default = connection.default_coding if connection is not None else "gsm7"
        mode = connection.long_messages if connection is not None else "udh"
        coding, _ = choose_coding(text, default)
        try:
            parts = split_message(text, coding, mode)
        except ValueError:  # more than 255 parts
            return 256
        return 1 if mode == "payload" else len(parts)
    if channel.type in ("ucp", "cimd2"):  # GSM 03.38 else UCS2, 153/67 per part (CONTRACT section 11)
        try:
            return plan_sms(text).total
        except ValueError:  # more than 255 parts
            return 256
    if channel.type == "external":
        return len(split_text(text, channel.config.max_length))
    limit = channel.config.get("max_length") if isinstance(channel.config, dict) else None
    try:
        limit = int(limit) if limit not in (None, "") else None
    except (TypeError, ValueError):
        limit = None
    return len(split_text(text, limit)) if limit and limit > 0 else 1


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class DlrState:
    """What was already decided for one message: the types reported, and whether it was wired."""

    types: frozenset[int] = frozenset()
    wired: bool = False


def dlr_types(status: str, mask: int, state: DlrState) -> tuple[list[int], DlrState]:
    """The report types (in order) a status of a message becomes, and the new state.

    `wired` -> 8; `failed` before `wired` -> 16, after it -> 2; `sent` -> 4; `delivered` -> 1;
    `errored` and `queued` -> none. Only types in `mask`, each at most once; 8 goes before a 1
    or a 2 (sent first when the receipt overtook the `wired` status); no 4 or 8 after a final
    type. `delivered` and a failure after `wired` mean the message was wired.
    """
    wanted: list[int] = []
    wired = state.wired
    if status == "wired":
        wanted, wired = [WIRED], True
    elif status == "sent":
        wanted = [SENT]
    elif status == "delivered":
        wanted, wired = [WIRED, DELIVERED], True
    elif status == "failed":
        wanted = [WIRED, UNDELIVERED] if wired else [REJECTED]
    done = set(state.types)
    final = bool(done & FINAL_TYPES)
    out: list[int] = []
    for kind in wanted:
        if not mask & kind or kind in done:
            continue
        if kind in (SENT, WIRED) and final:
            continue
        out.append(kind)
        done.add(kind)
        final = final or kind in FINAL_TYPES
    return out, DlrState(frozenset(done), wired)


_ESCAPE = re.compile(r"%(.)", re.DOTALL)


def fill_escapes(template: str, values: Mapping[str, str]) -> str:
    """Kannel's `%x` escapes of `template` replaced by their URL-encoded `values` (keyed by
    the letter); `%%` is a `%`; an unknown escape stays as it is."""

    def substitute(match: re.Match) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if letter not in values:
            return match.group(0)
        return quote(values[letter], safe="")

    return _ESCAPE.sub(substitute, template)


def kannel_time(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def plus_for_00(number: str) -> str:
    """Kannel's %q/%Q: a leading `00` becomes `+`."""
    return "+" + number[2:] if number.startswith("00") else number


def dlr_values(record: Mapping[str, str], kind: int, reply: str, external_id: str, transport: str, epoch: float) -> dict[str, str]:
    """The escapes of a report about the message `record` describes (what the door stored)."""
    sender, to = record.get("from", ""), record.get("to", "")
    return {
        "d": str(kind), "A": reply, "a": record.get("text", ""), "b": record.get("text", ""),
        "B": record.get("binfo", ""), "c": record.get("coding", "0"), "C": record.get("charset", ""),
        "F": external_id, "f": "", "i": transport, "I": record.get("uuid", ""), "n": record.get("username", ""),
        "p": sender, "P": to, "q": plus_for_00(sender), "Q": plus_for_00(to), "t": kannel_time(epoch),
        "T": str(int(epoch)), "u": record.get("udh", ""), "o": record.get("account", ""), "O": "", "R": "",
        "D": record.get("meta-data", ""), "k": "", "s": "", "S": "", "r": "",
    }  # fmt: skip


def mo_values(sender: str, address: str, text: str, epoch: float, uuid: str, transport: str) -> dict[str, str]:
    """The escapes of an inbound message posted to a door's `mo.url`."""
    words = text.split()
    return {
        "p": sender, "P": address, "q": plus_for_00(sender), "Q": plus_for_00(address), "a": text, "b": text,
        "T": str(int(epoch)), "t": kannel_time(epoch), "I": uuid, "i": transport,
        "k": words[0] if words else "", "r": " ".join(words[1:]), "c": "0", "C": "UTF-8",
    }  # fmt: skip
