"""`switchboard run dashboard` / `python -m services.dashboard`: uvicorn on
`DASHBOARD_HOST:DASHBOARD_PORT` (default 127.0.0.1:8090).

Beyond loopback the dashboard needs `DASHBOARD_TOKEN` and refuses to start without one (exit
2 before anything listens). SIGTERM or SIGINT stops it with exit 0. It publishes its own
heartbeat like every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys

import uvicorn

from ..core.broker import connect
from ..core.heartbeat import HeartbeatPublisher
from ..core.logs import setup_logging
from ..core.settings import Settings, get_settings
from .app import create_app
from .board import Board
from .feeds import Feeds

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(settings: Settings) -> str | None:
    """Why the dashboard must not start with these settings, or None."""
    if not is_loopback(settings.dashboard_host) and not settings.dashboard_token:
        return (f"DASHBOARD_HOST={settings.dashboard_host} is beyond loopback: set DASHBOARD_TOKEN "
                "(sent as a bearer token or basic-auth password) or listen on 127.0.0.1")  # fmt: skip
    return None


def url(settings: Settings) -> str:
    host = settings.dashboard_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{settings.dashboard_port}/"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the signals are ours (serve below)
        yield


async def serve(settings: Settings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    connection = await connect(settings)
    board = Board()
    feeds = await Feeds(connection, settings, board).start()
    heartbeat = await HeartbeatPublisher(connection, settings, "dashboard").start()
    config = uvicorn.Config(
        create_app(board, token=settings.dashboard_token), host=settings.dashboard_host, port=settings.dashboard_port,
        loop="none", lifespan="off", access_log=False, log_config=None, server_header=False,
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = _Server(config)
    serving = asyncio.ensure_future(server.serve())
    log.info("dashboard listening", extra={"url": url(settings), "token": bool(settings.dashboard_token)})
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        server.should_exit = True
        # open event streams never end by themselves: uvicorn cancels them after the grace
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 5)
        await heartbeat.close()
        await feeds.close()
        await connection.close()
    if serving.done() and not serving.cancelled() and serving.exception() is not None:
        raise serving.exception()


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service="dashboard")
    problem = exposure_problem(settings)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings))
