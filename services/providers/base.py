"""What the REST adapters share beyond `adapter.py` (REST_ADAPTERS.md 9.1).

URL joining, the per-message callback URL, number and text forms, and the small result
types of the callback parsers. Each adapter module stays a description of its provider;
everything that is the same for all six lives here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ..core.models import SendRequest, split_urn
from ..protocols.gsm import is_gsm7
from .adapter import ChannelConfigError, SendContext
from .external import national_number
from .text import attachment_url, split_text, text_with_attachments

__all__ = [
    "CallbackRequest",
    "Incoming",
    "Report",
    "Ignored",
    "Rejected",
    "CallbackResult",
    "ChannelConfigError",
    "is_gsm7",
    "attachment_url",
    "split_text",
    "join_url",
    "base_url",
    "status_url",
    "number",
    "no_plus",
    "message_text",
    "json_of",
    "config_flag",
    "RestAdapter",
]


def join_url(base: str, path: str) -> str:
    """`base` + `path`, keeping a path already in `base` and never doubling the slash."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def base_url(channel, default: str | None) -> str:
    """The channel's `config.base_url` (or the adapter's default), checked to be http(s)."""
    value = channel.config.get("base_url") or default
    if not value:
        raise ChannelConfigError("config.base_url is required")
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError(f"config.base_url is not an http(s) URL: {value!r}")
    return str(value)


def status_url(ctx: SendContext, aggregator: str, channel_uuid: str, msg_id: int | str) -> str:
    """Our status callback for one message: `.../c/<aggregator>/<uuid>/status?id=<id>`."""
    return ctx.callback_url(aggregator, channel_uuid, "status") + "?id=" + quote(str(msg_id), safe="")


def no_plus(value: str) -> str:
    return value[1:] if value.startswith("+") else value


def number(channel, request: SendRequest) -> str:
    """The number part of `to` (a `tel:` URN loses its scheme), national when `use_national`."""
    scheme, path = split_urn(request.to)
    if config_flag(channel, "use_national") and scheme == "tel":
        return national_number(path, channel.country)
    return path


def message_text(request: SendRequest) -> str:
    """The text with each attachment's URL appended as `\\n<url>` (REST_ADAPTERS.md 9.1)."""
    return text_with_attachments(request.text, request.attachments)

def config_flag(channel, key: str, default: bool = False) -> bool:
    value = channel.config.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def config_int(channel, key: str, default: int | None) -> int | None:
    value = channel.config.get(key, default)
    if value in (None, ""):
        return default
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise ChannelConfigError(f"config.{key} must be an integer, got {value!r}") from None
    if result <= 0:
        raise ChannelConfigError(f"config.{key} must be positive, got {value!r}")
    return result


def json_of(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (providers sometimes answer HTML)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


# --- callback parsing ------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackRequest:
    """What a callback parser sees: the request, already read by the inbound edge.

    `params` is the flat view of section 7 (query, form, multipart or a JSON object; body
    wins); `query` is the query string alone (where our own callback URL put `id`); `form` keeps every value of each urlencoded/multipart body parameter (Twilio signs
    them all); `json` is the parsed JSON body, when there is one (Infobip nests its data);
    `url` is our public URL of the request, raw path and query as received.
    """

    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""
    method: str = "POST"

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class Incoming:
    """The fields of one InboundMessage (the edge makes the URN from `sender`)."""

    sender: str
    text: str = ""
    external_id: str | None = None
    attachments: tuple[str, ...] = ()
    received_on: datetime | None = None


@dataclass(frozen=True)
class Report:
    """The fields of one StatusUpdate from a delivery report.

    `msg_id` is the `id` our callback URL carried (or Kannel's `%d` report's), used when the
    Redis `ext:` record does not know `external_id`.
    """

    status: Literal["sent", "delivered", "failed"]
    external_id: str | None = None
    msg_id: str | None = None
    error_code: str | None = None
    error_message: str = ""


def delivery_report(
    status_map: dict[str, str], provider_status: str, *, external_id: str, msg_id: str | None = None, detail: str = ""
) -> CallbackResult:
    """A provider's delivery state as one Report, or Ignored when the adapter does not map it.

    A failed state gets code `dlr_<provider state>` and `detail` (or the state) as its message
    (REST_ADAPTERS.md 9.1, "Failed receipts").
    """
    provider_status = provider_status.strip()
    status = status_map.get(provider_status)
    if status is None:
        return Ignored(f"status {provider_status!r} is not mapped")
    if status != "failed":
        return [Report(status=status, external_id=external_id, msg_id=msg_id)]
    return [
        Report(
            status="failed",
            external_id=external_id,
            msg_id=msg_id,
            error_code=f"dlr_{provider_status}",
            error_message=detail or provider_status,
        )
    ]


@dataclass(frozen=True)
class Ignored:
    """A report with a status we do not map: answered 200 `Ignored`, nothing published."""

    reason: str = ""


@dataclass(frozen=True)
class Rejected:
    """Bad input: answered `status` (400, 403) with `reason`, nothing published."""

    status: int
    reason: str


CallbackResult = list[Incoming] | list[Report] | Ignored | Rejected


def required(params: dict[str, str], name: str) -> str | Rejected:
    """The non-blank value of `name`, or the 400 that says it is missing."""
    value = params.get(name)
    if value is None or not str(value).strip():
        return Rejected(400, f"field '{name}' required")
    return str(value)


def first_missing(params: dict[str, str], *names: str) -> Rejected | None:
    for name in names:
        result = required(params, name)
        if isinstance(result, Rejected):
            return result
    return None


INVALID_DATE = Rejected(400, "invalid date format")


def parse_date(value: str | None, formats: tuple[str, ...]) -> datetime | None | Rejected:
    """`value` read with the first `strptime` format that fits, as UTC when it has no zone.

    `"rfc3339"` in `formats` accepts RFC 3339 (a `T` and a zone). Blank -> None.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    for fmt in formats:
        if fmt == "rfc3339":
            parsed = _rfc3339(value)
            if parsed is not None:
                return parsed
            continue
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return INVALID_DATE


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: str) -> datetime | None:
    if not _RFC3339.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def parts(channel, text: str, default_max: int | None) -> list[str]:
    """The message parts: split when `max_length` (or the adapter's default) is set."""
    limit = config_int(channel, "max_length", default_max)
    return split_text(text, limit) if limit else [text]


@dataclass(frozen=True)
class RestAdapter:
    """One aggregator: an `Adapter` for the sender plus its callback parsers by action.

    `receive_answer` is `(body, content type)` when the provider wants something other than
    the section 7 JSON answer to an incoming message (Twilio: empty TwiML).
    """

    aggregator: str
    build: Callable[..., list]
    interpret: Callable[..., Any]
    callbacks: Mapping[str, Callable[[Any, CallbackRequest], CallbackResult]]
    receive_answer: tuple[bytes, str] | None = None

    @property
    def transport(self) -> str:
        return f"rest.{self.aggregator}"
