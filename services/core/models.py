"""The five message bodies of CONTRACT section 5, as pydantic models.

`schemas/*.json` is generated from these models (`make schemas`) and a test checks the
files match, so the models are the single source of truth for the wire format.
Serialisation goes through pydantic's Rust serializer straight to bytes (`to_bytes`), and
parsing through `model_validate_json`, so a body is parsed once per hop.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["queued", "wired", "sent", "delivered", "errored", "failed"]
TEL_RE = re.compile(r"^\+?[0-9]{3,15}$")
URN_RE = re.compile(r"^([a-z][a-z0-9_-]*):(.+)$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


_second: tuple[int, str] = (-1, "")  # the last whole second formatted: (epoch second, "YYYY-MM-DDTHH:MM:SS")


def now_iso() -> str:
    """UTC now as RFC 3339 with milliseconds and a `Z`, the format of every timestamp we publish.

    Called for nearly every body: the date and time part is formatted once per second."""
    global _second
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{nanos // 1_000_000:03d}Z"


class _RandomHex:
    """Random hex digits from `os.urandom`, read 4 KiB at a time (one syscall per ~200 ids
    instead of one per id). A forked child starts with an empty pool: parent and child must
    never hand out the same digits."""

    def __init__(self, size: int = 4096):
        self.size = size
        self.pool = ""
        self.pos = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.pool, self.pos = "", 0

    def take(self, digits: int) -> str:
        if self.pos + digits > len(self.pool):
            self.pool, self.pos = os.urandom(self.size).hex(), 0
        start = self.pos
        self.pos = start + digits
        return self.pool[start : self.pos]


_random_hex = _RandomHex()
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 4122: 10xx


def new_uuid() -> str:
    """A time-ordered UUID (v7 layout: 48-bit Unix milliseconds, version 7, 74 random bits,
    RFC 4122 variant) so that ids sort by creation like courier's. Built as a string from
    the clock and pooled `os.urandom` digits: no uuid.UUID object per id."""
    ms = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    r = _random_hex.take(19)
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"


def split_urn(to: str) -> tuple[str, str]:
    """`tel:+250788123123` -> ("tel", "+250788123123"); a bare number is a tel path."""
    if TEL_RE.match(to):
        return "tel", to
    match = URN_RE.match(to)
    if not match:
        raise ValueError(f"not a number or URN: {to!r}")
    return match.group(1), match.group(2)


class Body(BaseModel):
    """Common behaviour: bytes in, bytes out, aliases on the wire."""

    model_config = ConfigDict(populate_by_name=True)

    def to_bytes(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, by_alias=True)

    @classmethod
    def from_bytes(cls, data: bytes | str):
        return cls.model_validate_json(data)


class SendRequest(Body):
    """What the flow engine asks us to send. Unknown fields are kept and passed along."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", title="SendRequest")

    id: int | str = Field(description="Comes back in every StatusUpdate exactly as sent.")
    uuid: str | None = None
    channel_uuid: str = Field(json_schema_extra={"pattern": UUID_RE.pattern})
    to: str = Field(
        description="E.164 number (3-15 digits, optional +) or URN such as tel:+250788123123.",
        json_schema_extra={"pattern": r"^\s*(\+?[0-9]{3,15}|[a-z][a-z0-9_-]*:.+)\s*$"},
    )
    text: str = Field(description="May be empty only when there are attachments.")
    attachments: list[str] = Field(default_factory=list)
    quick_replies: list[str] = Field(default_factory=list)
    session_status: str = ""
    high_priority: bool = False
    created_on: str | None = None
    expires_on: str | None = None
    attempt: int = Field(0, ge=0, description="Delivery attempts made so far; set by retries.")

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("id must not be empty")
        return value

    @field_validator("channel_uuid")
    @classmethod
    def _channel_uuid(cls, value: str) -> str:
        if not UUID_RE.match(value):
            raise ValueError("channel_uuid must be a UUID")
        return value.lower()

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        value = value.strip()
        scheme, path = split_urn(value)
        if scheme == "tel" and not TEL_RE.match(path):
            raise ValueError(f"not a phone number: {value!r}")
        return value

    @model_validator(mode="after")
    def _text_or_attachments(self):
        if not self.text and not self.attachments:
            raise ValueError("text may be empty only when there are attachments")
        return self

    def expired(self, now: datetime | None = None) -> bool:
        if not self.expires_on:
            return False
        try:
            expires = datetime.fromisoformat(self.expires_on.replace("Z", "+00:00"))
        except ValueError:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return (now or datetime.now(UTC)) > expires


class StatusError(BaseModel):
    model_config = ConfigDict(title="StatusError", extra="forbid")

    code: str
    message: str = ""
    retry_in_ms: int | None = None


class StatusUpdate(Body):
    model_config = ConfigDict(populate_by_name=True, title="StatusUpdate")

    id: int | str | None = None
    uuid: str | None = None
    channel_uuid: str
    status: Status
    external_id: str | None = None
    transport: str | None = None
    attempt: int | None = None
    error: StatusError | None = None
    timestamp: str = Field(default_factory=now_iso)


class InboundMessage(Body):
    model_config = ConfigDict(populate_by_name=True, title="InboundMessage")

    uuid: str = Field(default_factory=new_uuid)
    channel_uuid: str
    urn: str
    from_: str = Field(alias="from")
    text: str = ""
    attachments: list[str] = Field(default_factory=list)
    received_on: str = Field(default_factory=now_iso)
    external_id: str | None = None
    transport: str


class ChannelEvent(Body):
    model_config = ConfigDict(populate_by_name=True, title="ChannelEvent")

    uuid: str = Field(default_factory=new_uuid)
    channel_uuid: str
    event_type: Literal["stop_contact"]
    urn: str
    occurred_on: str = Field(default_factory=now_iso)


class HttpExchange(BaseModel):
    model_config = ConfigDict(title="HttpExchange")

    url: str
    method: str
    request: str = ""
    status: int | None = None
    response: str = ""
    elapsed_ms: int = 0


class ChannelLog(Body):
    """One per provider exchange. `smpp` lists PDU summaries for SMPP exchanges and `frames`
    frame summaries for UCP and CIMD2 ones (additions to the contract's fields, which only
    had room for HTTP)."""

    model_config = ConfigDict(populate_by_name=True, title="ChannelLog")

    uuid: str = Field(default_factory=new_uuid)
    channel_uuid: str
    type: Literal["msg_send", "msg_receive", "msg_status", "event_receive", "smpp", "ucp", "cimd2"]
    msg_id: int | str | None = None
    http: list[HttpExchange] = Field(default_factory=list)
    smpp: list[dict[str, Any]] = Field(default_factory=list)
    frames: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    created_on: str = Field(default_factory=now_iso)


BODIES: dict[str, type[Body]] = {
    "send_request": SendRequest,
    "status_update": StatusUpdate,
    "inbound_message": InboundMessage,
    "channel_event": ChannelEvent,
    "channel_log": ChannelLog,
}
