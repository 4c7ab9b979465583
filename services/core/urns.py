"""Sender numbers -> URNs, the way RapidPro's courier does it (CONTRACT section 7).

Every way in (the inbound edge's external and REST routes, the SMPP connector's deliver_sm)
turns a provider's idea of "who sent this" into the URN the flow engine keys contacts on, so
the rules live here once:

- a channel whose first scheme is `tel` gets `tel:+E164`, parsed with libphonenumber and the
  channel's `country` for national numbers; a number that fails and has 11 or more
  characters not starting with 0 is tried again with a `+` (providers often drop it);
- with a country, 3 to 6 digit short codes stay as they are (`tel:12345`);
- any other scheme gives `<scheme>:<sender trimmed of white space>`.

Parsing is cached per (sender, country): providers send the same few numbers over and over
and libphonenumber costs tens of microseconds a call.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

NOT_POSSIBLE = "not a possible number"
_NON_TEL_CHARS = re.compile(r"[^0-9A-Za-z]")
_SHORT_CODE = re.compile(r"^[0-9]{3,6}$")
_ALT_SHORT_CODE = re.compile(r"^[1-9][0-9]{2,5}$")
# Longer senders are not cached, so a flood of distinct junk cannot grow the cache's memory.
_CACHEABLE_LENGTH = 64


class UrnError(ValueError):
    """The sender cannot be turned into a URN; `str(error)` is the reason given to providers."""


def phone_number(raw: str, country: str | None) -> str:
    """`raw` as E.164 (`+250788383383`) or, with a country, a short code (`12345`).

    Raises UrnError(`not a possible number`) otherwise.
    """
    if len(raw) <= _CACHEABLE_LENGTH:
        return _phone_number_cached(raw, country or None)
    return _phone_number(raw, country or None)


@lru_cache(maxsize=16_384)
def _phone_number_cached(raw: str, country: str | None) -> str:
    return _phone_number(raw, country)


def _phone_number(raw: str, country: str | None) -> str:
    raw = raw.strip()
    plus = raw.startswith("+")
    raw = ("+" if plus else "") + _NON_TEL_CHARS.sub("", raw)
    number = _possible_number(raw, country)
    if number is None and len(raw) >= 11 and not raw.startswith("0"):
        number = _possible_number("+" + raw, country)
    if number is None:
        raise UrnError(NOT_POSSIBLE)
    return number


def _possible_number(raw: str, country: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, country)
    except NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE:
        return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    if country and _SHORT_CODE.match(raw):
        if phonenumbers.is_possible_short_number_for_region(parsed, country) or _ALT_SHORT_CODE.match(raw):
            return raw
    return None


def sender_urn(raw: str, *, country: str | None, scheme: str = "tel") -> tuple[str, str]:
    """The URN of a message's sender and its path: `("tel:+250788383383", "+250788383383")`.

    `scheme` is the channel's first URN scheme. Raises UrnError with the reason for providers.
    """
    if scheme == "tel":
        number = phone_number(raw, country)
        return f"tel:{number}", number
    path = raw.strip()
    if not path:
        raise UrnError(f"invalid {scheme} URN: empty sender")
    return f"{scheme}:{path}", path
