"""The dashboard's web app: one page, its two static files, a live stream and the contract.

Read-only: every route is a GET. Nothing is loaded from another host (the page's
Content-Security-Policy says so to the browser too). With a token every route, the static
files and the live stream included, answers 401 unless the request carries it as a bearer
token or as the password of basic auth (any user name; browsers ask for it and then send it
with the EventSource requests too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from functools import lru_cache
from importlib import resources

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .board import Board
from .contract import render_contract

STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: Tail rows sent with the first event of a stream, and at most per event afterwards.
FIRST_TAIL_ROWS = 100
TAIL_ROWS_PER_EVENT = 50


def token_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, or basic auth whose password is the token."""
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    return False


class RequireToken:
    """ASGI middleware: 401 for every HTTP request without the token."""

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            if not token_matches(authorization, self.token):
                response = PlainTextResponse(
                    "401: a token is required (Authorization: Bearer <token>, or basic auth with the token as password)\n",
                    status_code=401, headers={"WWW-Authenticate": 'Basic realm="switchboard", charset="UTF-8"'},
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@lru_cache(maxsize=8)
def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Snapshots:
    """One snapshot per `every` seconds, shared by every open page."""

    def __init__(self, board: Board, every: float):
        self.board = board
        self.every = every
        self._at = 0.0
        self._snapshot: dict | None = None

    def current(self) -> dict:
        now = time.monotonic()
        if self._snapshot is None or now - self._at >= self.every * 0.9:
            self._snapshot = self.board.snapshot()
            self._at = now
        return self._snapshot


def create_app(board: Board, *, token: str = "", every: float = 1.0, contract=None) -> Starlette:
    """`contract`: a callable returning the AsyncAPI document as a dict (default: generated
    from services/core/asyncapi.py)."""
    snapshots = Snapshots(board, every)

    async def index(request: Request) -> Response:
        return HTMLResponse(_asset("index.html"), headers=SECURITY_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response(_asset(name), media_type=STATIC[name], headers=SECURITY_HEADERS)

    async def snapshot(request: Request) -> Response:
        data = {**snapshots.current(), "tail": _tail(request, 0, FIRST_TAIL_ROWS)}
        return Response(orjson.dumps(data), media_type="application/json", headers=SECURITY_HEADERS)

    def _tail(request: Request, after: int, limit: int) -> list[dict]:
        params = request.query_params
        return board.tail_rows(after, params.get("channel") or None, params.get("status") or None, limit)

    async def events(request: Request) -> Response:
        async def stream():
            after, limit = 0, FIRST_TAIL_ROWS
            yield b"retry: 2000\n\n"
            while True:
                rows = _tail(request, after, limit)
                if rows:
                    after = rows[-1]["seq"]
                elif after == 0:
                    after = board.seq  # nothing matched yet: only newer rows from now on
                limit = TAIL_ROWS_PER_EVENT
                yield b"data: " + orjson.dumps({**snapshots.current(), "tail": rows}) + b"\n\n"
                await asyncio.sleep(every)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})

    async def contract_page(request: Request) -> Response:
        return HTMLResponse(render_contract(_document()), headers=SECURITY_HEADERS)

    async def contract_yaml(request: Request) -> Response:
        from ..core.asyncapi import to_yaml

        return Response(to_yaml(_document()), media_type="application/yaml", headers=SECURITY_HEADERS)

    def _document() -> dict:
        if contract is not None:
            return contract()
        from ..core.asyncapi import document

        return document()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/events", events),
            Route("/api/snapshot", snapshot),
            Route("/contract", contract_page),
            Route("/contract.yaml", contract_yaml),
        ]
    )
    if token:
        app.add_middleware(RequireToken, token=token)
    return app
