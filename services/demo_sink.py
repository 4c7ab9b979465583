"""A provider stand-in for demos: logs every HTTP request it gets as a JSON line, answers 200.

`python -m services.demo_sink --port 9090`. The demo channels file's external channel posts
here, so `make run` followed by `make demo-send` shows a message leave the gateway without
any real provider. Headers are logged with secrets masked; bodies are cut at 4 KiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .core.logs import setup_logging
from .core.redact import redact, redact_mapping

log = logging.getLogger("services.demo_sink")
BODY_LOG_LIMIT = 4096
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    text = body[:BODY_LOG_LIMIT].decode("utf-8", "replace")
    log.info(
        "request received",
        extra={
            "method": request.method,
            "path": request.url.path,
            "query": redact(request.url.query),
            "headers": redact_mapping(dict(request.headers)),
            "body": text + ("…" if len(body) > BODY_LOG_LIMIT else ""),
            "body_bytes": len(body),
        },
    )
    return JSONResponse({"status": "accepted"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", receive, methods=METHODS)])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: it re-raises SIGTERM after shutting down,
    which would end the process with -15 instead of the 0 every service owes its supervisor."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, then finish open requests and return."""
    server = _Server(uvicorn.Config(create_app(), host=host, port=port, log_config=None, access_log=False, lifespan="off"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    await server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo_sink", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args(argv)
    setup_logging(fmt=os.environ.get("LOG_FORMAT", "json"), service="demo-sink")
    log.info("listening", extra={"host": args.host, "port": args.port})
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
