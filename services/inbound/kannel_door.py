"""`GET|POST /cgi-bin/sendsms`: the Kannel door, for courier's KN channel type (CONTRACT section 10).

Courier's KN handler cannot tell Switchboard from a Kannel smsbox: the same parameters, the
same `text/html` answers (202 `0: Accepted for delivery` only after the broker confirmed;
403 for bad credentials, never 429), and later the same `dlr-url` GETs and MO POSTs, made by
the callbacks worker. Parsing and answers are `services/providers/kannel_door.py`; this module
picks the door, the channel and checks the length, then hands over to `doors.accept`.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from functools import lru_cache

from ..core.models import TEL_RE, SendRequest, new_uuid, now_iso
from ..core.urns import UrnError, phone_number
from ..providers import kannel_door as kn
from .common import Answer
from .doors import METHODS, Door, accept

PATH = "/cgi-bin/sendsms"
_FORM = b"application/x-www-form-urlencoded"


def answer(refusal: tuple[int, str] | kn.Refusal) -> Answer:
    status, body = (refusal.status, refusal.body) if isinstance(refusal, kn.Refusal) else refusal
    return Answer(status, body.encode(), kn.HTML)


def unavailable() -> Answer:
    return answer(kn.TEMPORAL_FAILURE)


@lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]):
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def allowed(door, scope) -> bool:
    if not door.allow_ips:
        return True
    client = scope.get("client")
    try:
        address = ipaddress.ip_address(client[0]) if client else None
    except ValueError:
        return False
    return address is not None and any(address in net for net in _networks(tuple(door.allow_ips)))


def find_door(registry, username: str, password: str):
    """The kannel door with these credentials (compared in constant time), or None."""
    for door in registry.doors.values():
        if door.kind == "kannel" and hmac.compare_digest(door.username.encode(), username.encode()):
            if hmac.compare_digest(door.password.encode(), password.encode()):
                return door
    return None


def receiver(to: str, country: str | None) -> str | None:
    """`to` as E.164 when the channel's country makes it one (courier sends national numbers
    with `use_national`), else the digits as given; None when it is no number at all."""
    try:
        return phone_number(to, country)
    except UrnError:
        return to if TEL_RE.match(to) else None


async def handle(edge, scope, body: bytes) -> Answer:
    if scope["method"] not in METHODS:
        return Answer(405, b"Method not allowed", kn.HTML, ((b"allow", b"GET, POST"),))
    pairs = kn.query_pairs(scope.get("query_string", b""))
    if body and any(k == b"content-type" and v.split(b";")[0].strip().lower() == _FORM for k, v in scope.get("headers", ())):
        for key, value in kn.query_pairs(body).items():
            pairs.setdefault(key, value)
    registry = edge.registry
    door = find_door(registry, *kn.credentials(pairs))
    if door is None or not allowed(door, scope):
        return answer(kn.AUTH_FAILED)
    sms = kn.read_sendsms(pairs)
    if isinstance(sms, kn.Refusal):
        return answer(sms)
    channel_uuid = door.smsc.get(sms.smsc, door.channel).lower() if sms.smsc else door.channel
    channel = registry.get(channel_uuid)
    if channel is None:
        return answer(kn.NOT_ROUTABLE)
    to = receiver(sms.to, channel.country)
    if to is None:
        return answer(kn.Refusal(400, "To field misformed, rejected"))
    if not sms.text:
        return answer(kn.Refusal(400, "Text field misformed, rejected"))
    connection = registry.connections.get(getattr(channel, "connection", ""))
    parts = kn.parts_needed(channel, connection, sms.text)
    if parts > door.max_parts:
        return answer(kn.too_long(parts, door.max_parts))
    uuid = new_uuid()
    request = SendRequest(
        id=uuid, uuid=uuid, channel_uuid=channel.uuid, to=to, text=sms.text,
        high_priority=sms.priority >= 1, created_on=now_iso(),
    )  # fmt: skip
    record = None
    if sms.dlr_url and sms.dlr_mask:
        record = {
            "kind": "kannel", "door": door.name, "uuid": uuid, "url": sms.dlr_url, "mask": sms.dlr_mask,
            "from": sms.sender, "to": sms.to, "text": sms.text, "username": sms.username, "coding": str(sms.coding),
            "charset": sms.charset, "created": time.time(), **sms.extra,
        }  # fmt: skip
    await accept(edge, request, record)
    return answer(kn.ACCEPTED)


DOOR = Door("kannel", lambda path: path.rstrip("/") == PATH, handle, unavailable)
