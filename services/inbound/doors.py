"""The front doors' routes on the inbound edge (CONTRACT section 10): what they share.

A front door is a flow engine's adapter: it turns RapidPro's send request (Kannel's
`sendsms`, or courier's EX send) into a SendRequest on `sms.outbound`, exactly as any flow
engine publishes one. What the callbacks worker needs later to call RapidPro back (the opaque
`dlr-url` and its mask, or the EX `id` exactly as sent) is written to Redis *before* the
SendRequest is published, in a `door:<uuid>` hash that lives 7 days:

- a status can only exist once the SendRequest was published, so the record is always there
  when the first status reaches the callbacks worker;
- statuses carry the SendRequest's `id` but none of its other fields, so the record cannot
  ride on the message itself; and the worker keeps its per-message report state (which DLR
  types went out, the callback sequence) in the same hash, with Redis' own persistence;
- a request is answered 202/200 only after both the record and the publish were confirmed,
  503 otherwise (RapidPro retries; an orphan record from a failed publish just expires).

One module per door kind (`kannel_door.py`, `external_door.py`) defines `DOOR`; `FrontDoors`
routes the paths to them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from ..core.models import SendRequest
from .common import Answer, BrokerUnavailable, RequestError

log = logging.getLogger(__name__)

RECORD_TTL_S = 7 * 24 * 3600
METHODS = ("GET", "POST")


class StoreUnavailable(Exception):
    """Redis did not take the door record: the request is answered 503."""


def record_key(edge, uuid: str) -> str:
    return edge.runtime.key(f"door:{uuid}")


async def accept(edge, request: SendRequest, record: dict | None) -> None:
    """Write the door record (when there is one), then publish the SendRequest and wait for
    the broker's confirm. Raises StoreUnavailable or BrokerUnavailable."""
    if record is not None:
        key = record_key(edge, request.uuid)
        try:
            async with edge.runtime.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, "d", orjson.dumps(record))
                pipe.expire(key, RECORD_TTL_S)
                await pipe.execute()
        except Exception as exc:  # redis.RedisError, OSError
            edge._warn("door record not written; answering 503", "redis", exc)
            raise StoreUnavailable() from None
    await edge.publish("sms.outbound", f"send.{request.channel_uuid}", request.to_bytes(), request.uuid)


@dataclass(frozen=True)
class Door:
    """One door kind: does it serve this path, and its handler (scope, body) -> Answer."""

    kind: str
    serves: Callable[[str], bool]
    handle: Callable[[object, dict, bytes], Awaitable[Answer]]
    unavailable: Callable[[], Answer]  # the 503 answer in this door's dialect


class FrontDoors:
    """The ASGI endpoint of every door path; the edge app sends those paths here."""

    def __init__(self, edge, doors: list[Door]):
        self.edge = edge
        self.doors = doors

    def match(self, path: str) -> Door | None:
        for door in self.doors:
            if door.serves(path):
                return door
        return None

    async def __call__(self, scope, receive, send, door: Door) -> int:
        from .app import ClientGone, read_body, send_answer  # app imports this module

        try:
            body = await read_body(scope, receive)
            answer = await door.handle(self.edge, scope, body)
        except ClientGone:
            return 499
        except (BrokerUnavailable, StoreUnavailable):
            answer = door.unavailable()
        except RequestError as exc:  # 413, a bad Content-Length
            answer = Answer(exc.status, exc.reason.encode(), "text/plain; charset=utf-8")
        except Exception:  # a bug: log it; a 5xx makes RapidPro try again later
            log.exception("front door failed", extra={"door": door.kind})
            answer = door.unavailable()
        await send_answer(send, answer)
        return answer.status
