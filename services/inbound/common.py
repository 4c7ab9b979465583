"""What every callback route shares (CONTRACT section 7 and REST_ADAPTERS.md 9.1).

A route module (`external.py`, and later one per aggregator) only says what its actions
read and publish; the rules that must be the same everywhere live here:

- `Call`: one request to `/c/<slug>/<channel_uuid>/<action>`, with the channel already looked
  up, the body already read under the 64 KiB limit, and `params()`: query string plus an
  urlencoded, multipart or JSON body, the body winning over the query;
- `RequestError` (raise it with the reason; the dispatcher answers the JSON error envelope)
  and `json_answer` / `envelope` for the success bodies;
- `Call.publish*`: publish-then-answer. They return only after the broker confirmed; when
  the broker is down, blocked or slower than `PUBLISH_TIMEOUT_S` they raise BrokerUnavailable
  (503), so nothing answered 200 is ever lost;
- `parse_date`, `status_ids` and `first_param` for the parameters every provider sends;
- `channel_log`: the ChannelLog of a request, secrets masked.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from ..core.models import UUID_RE, ChannelEvent, InboundMessage, StatusUpdate, new_uuid, now_iso
from ..core.redact import MASK, redact

if TYPE_CHECKING:
    from .edge import Edge

MAX_BODY_BYTES = 65_536
PUBLISH_TIMEOUT_S = 5.0
INVALID_DATE = "invalid date format, must be RFC 3339"
_INT64_MAX = 2**63 - 1
_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&])secret=)[^&\s]*")
_JSON = "application/json"


class RequestError(Exception):
    """A request we refuse; `reason` goes into the JSON error envelope."""

    status = 400

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class BrokerUnavailable(RequestError):
    """The broker did not confirm in time: the provider should try again later."""

    status = 503

    def __init__(self, reason: str = "message broker unavailable, try again later"):
        super().__init__(reason)


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


def envelope(message: str, data: list[dict[str, Any]]) -> bytes:
    """Courier's answer shape: `{"message": ..., "data": [...]}`."""
    return orjson.dumps({"message": message, "data": data})


def json_answer(message: str, data: list[dict[str, Any]], status: int = 200) -> Answer:
    return Answer(status, envelope(message, data))


def error_answer(reason: str, status: int = 400, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Answer:
    return Answer(status, envelope("Error", [{"type": "error", "error": reason}]), _JSON, headers)


class Call:
    """One callback request, as a route's action sees it."""

    __slots__ = (
        "edge", "channel", "slug", "action", "log_type", "method", "path", "query_string", "headers",
        "body", "started", "msg_id", "errors", "_query", "_params",
    )

    def __init__(self, edge: Edge, channel, slug: str, action: str, log_type: str, scope: dict):
        self.edge = edge
        self.channel = channel
        self.slug = slug
        self.action = action
        self.log_type = log_type
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        self.body = b""
        self.started = time.perf_counter()
        self.msg_id: int | str | None = None  # set by the action; goes into the ChannelLog
        self.errors: list[str] = []
        self._query: dict[str, str] | None = None
        self._params: dict[str, str] | None = None

    def header(self, name: bytes) -> str | None:
        """A request header by its lower-case name."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def content_type(self) -> str:
        value = self.header(b"content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    def query(self) -> dict[str, str]:
        """Query-string parameters (the first value of each name)."""
        if self._query is None:
            self._query = _first_values(parse_qsl(self.query_string.decode("utf-8", "replace"), keep_blank_values=True))
        return self._query

    async def params(self) -> dict[str, str]:
        """Query plus body parameters; a name in the body wins over the same name in the query."""
        if self._params is None:
            body = await parse_body(self.content_type, self.header(b"content-type") or "", self.body)
            self._params = {**self.query(), **body} if body else self.query()
        return self._params

    # Publish-then-answer: each returns after the broker confirmed, or raises BrokerUnavailable.

    async def publish_message(self, message: InboundMessage) -> None:
        await self.edge.publish("sms.inbound", f"msg.{message.channel_uuid}", message.to_bytes(), message.uuid)

    async def publish_status(self, status: StatusUpdate) -> None:
        from ..core.broker import status_message_id

        await self.edge.publish(
            "sms.status", f"status.{status.status}.{status.channel_uuid}", status.to_bytes(), status_message_id(status)
        )

    async def publish_event(self, event: ChannelEvent) -> None:
        await self.edge.publish(
            "sms.inbound", f"event.{event.event_type}.{event.channel_uuid}", event.to_bytes(), event.uuid
        )


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
    return out


async def parse_body(content_type: str, raw_content_type: str, body: bytes) -> dict[str, str]:
    """Parameters of an urlencoded, multipart or JSON body; other bodies carry none."""
    if not body:
        return {}
    if content_type == "application/x-www-form-urlencoded":
        return _first_values(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if content_type == "multipart/form-data":
        return await _multipart(raw_content_type, body)
    if content_type == _JSON or content_type.endswith("+json"):
        return _json_params(body)
    return {}


async def _multipart(raw_content_type: str, body: bytes) -> dict[str, str]:
    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield body

    parser = MultiPartParser(Headers({"content-type": raw_content_type}), stream(), max_files=16, max_fields=1000)
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError, LookupError) as exc:
        raise RequestError(f"invalid request: {getattr(exc, 'message', exc)}") from None
    try:
        # File parts are not parameters (Go's ParseMultipartForm keeps them apart too).
        return _first_values([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    finally:
        await form.close()


def _json_params(body: bytes) -> dict[str, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError("invalid request: body is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError("invalid request: JSON body must be an object")
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            out[key] = str(value)
        # null, arrays and objects are not parameters
    return out


def first_param(params: dict[str, str], custom: str | None, *names: str) -> str:
    """Courier's getFormField: the channel's custom name when present, else the first default
    name present (even when its value is empty), else ""."""
    if custom and custom in params:
        return params[custom]
    for name in names:
        if name in params:
            return params[name]
    return ""


def parse_date(value: str) -> str:
    """An RFC 3339 timestamp (a `T` and a zone required) as our UTC `...T..:..:..mmmZ`."""
    match = _RFC3339.match(value.strip())
    if not match:
        raise RequestError(INVALID_DATE)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone == "Z":  # already UTC (what most providers send): check the fields, reformat as is
        try:
            datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        except ValueError:
            raise RequestError(INVALID_DATE) from None
        return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro // 1000:03d}Z"
    try:
        if zone == "Z":
            tz = UTC
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("zone offset out of range")
            offset = timedelta(hours=hours, minutes=minutes)
            tz = timezone(offset if zone[0] == "+" else -offset)
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
        utc = stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RequestError(INVALID_DATE) from None
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def status_ids(raw_id: str, raw_uuid: str) -> tuple[int | str | None, str | None]:
    """CONTRACT section 5: an `id` of digits is an integer (when it fits in 64 bits, which
    every JSON consumer can read), a uuid-shaped `id` is published as `uuid` with `id` null,
    any other `id` as a string; a `uuid` parameter is the `uuid`."""
    raw_id, raw_uuid = raw_id.strip(), raw_uuid.strip()
    msg_id: int | str | None = None
    msg_uuid: str | None = raw_uuid or None
    if raw_id:
        if raw_id.isascii() and raw_id.isdigit() and int(raw_id) <= _INT64_MAX:
            msg_id = int(raw_id)
        elif UUID_RE.match(raw_id):
            msg_uuid = msg_uuid or raw_id.lower()
        else:
            msg_id = raw_id
    return msg_id, msg_uuid


def check_secret(call: Call, secret: str | None) -> None:
    """CONTRACT section 8: `?secret=`, `X-Switchboard-Secret` or the HTTP basic auth password."""
    if not secret:
        return
    expected = secret.encode()
    for given in _offered_secrets(call):
        if hmac.compare_digest(given.encode(), expected):
            return
    raise RequestError("missing or wrong receive secret", 401)


def _offered_secrets(call: Call):
    query = call.query().get("secret")
    if query:
        yield query
    header = call.header(b"x-switchboard-secret")
    if header:
        yield header
    authorization = call.header(b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "basic" and token:
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        yield decoded.partition(":")[2]


def channel_log(call: Call, answer: Answer, public_base: str) -> tuple[str, bytes]:
    """The ChannelLog of one request, (its uuid, its body): the request and answer as text,
    secrets masked. Built as a dict in the ChannelLog model's field order and dumped once:
    a test holds it to the model and the schema (pydantic would double the cost per request)."""
    query = call.query_string.decode("utf-8", "replace")
    target = call.path + ("?" + _SECRET_PARAM.sub(r"\1" + MASK, query) if query else "")
    lines = [f"{call.method} {target} HTTP/1.1"]
    lines.extend(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in call.headers)
    request = redact("\r\n".join(lines) + "\r\n\r\n" + call.body.decode("utf-8", "replace"))
    response = redact(
        f"HTTP/1.1 {answer.status} {_phrase(answer.status)}\r\nContent-Type: {answer.content_type}\r\n\r\n"
        + answer.body.decode("utf-8", "replace")
    )
    uuid = new_uuid()
    exchange = {
        "url": redact(public_base + target),
        "method": call.method,
        "request": request,
        "status": answer.status,
        "response": response,
        "elapsed_ms": int((time.perf_counter() - call.started) * 1000),
    }
    body = {
        "uuid": uuid,
        "channel_uuid": call.channel.uuid,
        "type": call.log_type,
        "msg_id": _json_safe(call.msg_id),
        "http": [exchange],
        "smpp": [],
        "frames": [],
        "errors": call.errors,
        "created_on": now_iso(),
    }
    return uuid, orjson.dumps(body)


def _json_safe(msg_id: int | str | None) -> int | str | None:
    """orjson writes integers up to 64 bits; a larger id (a provider's) goes out as text."""
    if isinstance(msg_id, int) and not -(2**63) <= msg_id < 2**64:
        return str(msg_id)
    return msg_id


def _phrase(status: int) -> str:
    phrase = _PHRASES.get(status)
    if phrase is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        _PHRASES[status] = phrase
    return phrase


_PHRASES: dict[int, str] = {}


def option(channel, key: str, default=None):
    """A config value of an external channel (a model) or a REST channel (a dict)."""
    config = channel.config
    if isinstance(config, dict):
        value = config.get(key, default)
    else:
        value = getattr(config, key, default)
    return default if value is None else value
