"""`POST|GET /ex/<door>/send`: the External door, courier's EX channel type seen from the
provider's end (CONTRACT section 10).

Courier sends a form (RapidPro's default body) or a JSON object with `id` or `uuid`, `text`,
`to`, `from`, `channel`, with the channel's `send_authorization` (`Token <t>` / `Bearer <t>`)
or `?token=`. A long text comes as several requests with the same `id`: each becomes its own
SendRequest (never de-duplicated on the id). The answer is JSON: 200
`{"status":"accepted","id":...}` only after the broker confirmed, 401, 400 with a reason, 404
for an unknown door, 503.
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError

from ..core.models import SendRequest, new_uuid, now_iso
from ..providers import external_door as ex
from .common import Answer, _first_values, parse_body
from .doors import METHODS, Door, accept

PREFIX = "/ex/"
_JSON = "application/json"


def reply(code: int, **body) -> Answer:
    return Answer(code, orjson.dumps(body), _JSON)


def error(code: int, reason: str) -> Answer:
    return reply(code, status="error", error=reason)


def unavailable() -> Answer:
    return error(503, "temporal failure, try again later")


def door_name(path: str) -> str | None:
    """`/ex/<name>/send` (a trailing slash accepted) -> name."""
    parts = path.rstrip("/").split("/")
    if len(parts) == 4 and parts[1] == "ex" and parts[3] == "send" and parts[2]:
        return parts[2]
    return None


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def token_given(scope, query: dict[str, str]) -> str:
    scheme, _, token = _header(scope, b"authorization").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and token.strip():
        return token.strip()
    return query.get("token", "")


async def params_of(scope, body: bytes) -> dict:
    """Query plus body parameters (the body wins); a JSON body keeps its value types."""
    query = _first_values(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True))
    raw_type = _header(scope, b"content-type")
    content_type = raw_type.split(";", 1)[0].strip().lower()
    if body and (content_type == _JSON or content_type.endswith("+json")):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ValueError("body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        return {**query, **data}
    return {**query, **(await parse_body(content_type, raw_type, body))}


async def handle(edge, scope, body: bytes) -> Answer:
    name = door_name(scope["path"])
    door = edge.registry.doors.get(name or "")
    if door is None or door.kind != "external":
        return error(404, "page not found")
    if scope["method"] not in METHODS:
        return Answer(405, orjson.dumps({"status": "error", "error": "method not allowed"}), _JSON, ((b"allow", b"GET, POST"),))
    query = _first_values(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True))
    if not hmac.compare_digest(token_given(scope, query).encode(), door.token.encode()):
        return error(401, "missing or wrong token")
    try:
        params = await params_of(scope, body)
    except ValueError as exc:
        return error(400, f"invalid request: {exc}")
    send = ex.read_send(params)
    if isinstance(send, str):
        return error(400, send)
    channel = edge.registry.get(door.channel)
    if channel is None:
        return error(400, "channel not routable")
    uuid = new_uuid()
    try:
        request = SendRequest(id=uuid, uuid=uuid, channel_uuid=channel.uuid, to=send.to, text=send.text, created_on=now_iso())
    except ValidationError:
        return error(400, f"field 'to' is not a phone number or URN: {send.to!r}")
    record = {"kind": "external", "door": door.name, "uuid": uuid, "ref": ex.ref_text(send.ref), "created": time.time()}
    await accept(edge, request, record)
    return reply(200, status="accepted", id=send.ref)


DOOR = Door("external", lambda path: path.startswith(PREFIX), handle, unavailable)
