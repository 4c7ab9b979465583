"""The inbound edge's ASGI app: `/c/<slug>/<channel_uuid>/<action>`, the front doors
(`/cgi-bin/sendsms`, `/ex/<door>/send`, services/inbound/doors.py) plus health and metrics.

`/c/...` is served by `CallbackDispatcher`, a plain ASGI endpoint rather than a Starlette
function route: it reads the body itself so that the 64 KiB limit is enforced while reading
(a 1 GB upload is cut off at 64 KiB, not buffered first), and it keeps the per-request path
short (one dict lookup per step, one orjson encode per body).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.metrics import metrics_payload
from . import external_door, kannel_door
from .common import (
    MAX_BODY_BYTES,
    Answer,
    Call,
    RequestError,
    channel_log,
    check_secret,
    error_answer,
    option,
)
from .doors import FrontDoors
from .edge import Edge
from .routes import CallbackRoutes, discover

log = logging.getLogger(__name__)

REQUESTS = Counter("switchboard_inbound_requests_total", "Inbound HTTP requests by route and status code", ["route", "code"])
ALLOWED_METHODS = ("GET", "POST")
_ALLOW_HEADER = ((b"allow", b"GET, POST"),)
NOT_FOUND = "page not found"
METHOD_NOT_ALLOWED = "method not allowed"


class BodyTooLarge(RequestError):
    status = 413

    def __init__(self):
        super().__init__(f"request body too large (limit {MAX_BODY_BYTES} bytes)")


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


class CallbackDispatcher:
    def __init__(self, edge: Edge, routes: dict[str, CallbackRoutes]):
        self.edge = edge
        self.routes = routes
        self._counters: dict[tuple[str, int], Counter] = {}

    async def __call__(self, scope, receive, send) -> None:
        call: Call | None = None
        route = "unmatched"
        try:
            routes, slug, action_name, channel_uuid = self._match(scope)
            route = f"{slug}.{action_name}"
            action = routes.actions[action_name]
            channel = self.edge.registry.get(channel_uuid)
            if channel is None:
                raise RequestError("channel not found")
            if not routes.serves(channel):
                raise RequestError("channel type wrong")
            call = Call(self.edge, channel, slug, action_name, action.log_type, scope)
            check_secret(call, option(channel, "receive_secret"))
            call.body = await read_body(scope, receive)
            answer = await action.handler(call)
        except RequestError as exc:
            answer = error_answer(exc.reason, exc.status, _ALLOW_HEADER if exc.status == 405 else ())
            if call is not None:
                call.errors.append(exc.reason)
        except ClientGone:
            return
        except Exception as exc:  # a bug: say so, log it, never hang the provider
            log.exception("callback failed", extra={"route": route})
            answer = error_answer("internal error", 500)
            if call is not None:
                call.errors.append(f"internal error: {type(exc).__name__}")
        await send_answer(send, answer)
        self._count(route, answer.status)
        if call is not None:
            log_uuid, log_body = channel_log(call, answer, self.edge.public_base)
            self.edge.log_request(call.channel.uuid, log_uuid, log_body)

    def _match(self, scope) -> tuple[CallbackRoutes, str, str, str]:
        """(routes, slug, action name, channel uuid) of the path; RequestError 404 or 405."""
        parts = scope["path"].split("/")
        if parts[-1] == "":
            parts.pop()  # a trailing slash is accepted
        if len(parts) != 5 or parts[1] != "c":
            raise RequestError(NOT_FOUND, 404)
        _, _, slug, channel_uuid, action_name = parts
        routes = self.routes.get(slug)
        if routes is None:
            raise RequestError(NOT_FOUND, 404)
        if scope["method"] not in ALLOWED_METHODS:
            raise RequestError(METHOD_NOT_ALLOWED, 405)
        if action_name not in routes.actions:
            raise RequestError(NOT_FOUND, 404)
        return routes, slug, action_name, channel_uuid

    def _count(self, route: str, status: int) -> None:
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._counters[(route, status)] = REQUESTS.labels(route, str(status))
        counter.inc()


async def read_body(scope, receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused (413) as soon as it passes `limit` bytes."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge()
            except ValueError:
                raise RequestError("invalid Content-Length") from None
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_answer(send, answer: Answer) -> None:
    headers = [
        (b"content-type", answer.content_type.encode("latin-1", "replace")),
        (b"content-length", str(len(answer.body)).encode()),
        *answer.headers,
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class EdgeApp:
    """The ASGI app: `/c/...` goes straight to the dispatcher (the hot path skips Starlette's
    middleware and router), everything else (`/health`, `/ready`, `/metrics`) to Starlette."""

    def __init__(self, edge: Edge, dispatcher: CallbackDispatcher, site: Starlette, doors: FrontDoors | None = None):
        self.edge = edge
        self.dispatcher = dispatcher
        self.site = site
        self.doors = doors

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/c/"):
            await self.dispatcher(scope, receive, send)
        elif scope["type"] == "http" and self.doors is not None and (door := self.doors.match(scope["path"])):
            status = await self.doors(scope, receive, send, door)  # the front doors (CONTRACT section 10)
            self.dispatcher._count(f"door.{door.kind}", status)
        else:
            await self.site(scope, receive, send)


def create_app(edge: Edge, routes: dict[str, CallbackRoutes] | None = None) -> EdgeApp:
    """The ASGI app over a (started or not yet started) Edge. Starting the edge is the
    caller's job (server.py, or a test), so the app has no lifespan of its own."""
    dispatcher = CallbackDispatcher(edge, routes if routes is not None else discover())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        if edge.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "broker unavailable"}, status_code=503)

    async def metrics(request: Request) -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _plain(error_answer(NOT_FOUND, 404))

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return _plain(error_answer(METHOD_NOT_ALLOWED, 405, _ALLOW_HEADER))

    site = Starlette(
        exception_handlers={404: not_found, 405: method_not_allowed},
        routes=[Route("/health", health), Route("/ready", ready), Route("/metrics", metrics)],
    )
    return EdgeApp(edge, dispatcher, site, FrontDoors(edge, [kannel_door.DOOR, external_door.DOOR]))


def _plain(answer: Answer) -> Response:
    headers = {k.decode(): v.decode() for k, v in answer.headers}
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type, headers=headers)
