"""`switchboard run inbound` / `python -m services.inbound`: uvicorn (uvloop, httptools) on
`INBOUND_HOST:INBOUND_PORT`.

The edge consumes no queue, so it does not use `run_service`; it shares its parts instead
(settings, logging, `load_registry_or_exit`: exit 2 on a broken channels file before touching
the broker). Signals are ours, not uvicorn's: SIGHUP reloads the channels file, and SIGTERM
(or SIGINT) stops accepting, lets in-flight requests finish (at most 5 s), flushes pending
ChannelLogs and exits 0 within 10 s. uvicorn would re-raise SIGTERM after its own graceful
stop, which ends the process with -15 instead of 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

import uvicorn

from ..core.logs import setup_logging
from ..core.service import Runtime, load_registry_or_exit
from ..core.settings import Settings, get_settings
from .app import create_app
from .edge import Edge

log = logging.getLogger(__name__)
GRACEFUL_S = 5
# A request allocates a few hundred container objects, nearly all freed by refcounting: with
# the default 700 the young generation is scanned every two or three requests.
GC_THRESHOLDS = (20_000, 20, 100)


class _Server(uvicorn.Server):
    """uvicorn without its signal handling (serve() below owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def serve(settings: Settings, registry) -> None:
    edge = Edge(Runtime("inbound", settings, registry))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, edge.reload)
    stop_wait = asyncio.ensure_future(stopping.wait())
    try:
        starting = asyncio.ensure_future(edge.start())
        await asyncio.wait({starting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            log.info("stopped before the broker answered")
            return
        starting.result()
        config = uvicorn.Config(
            create_app(edge),
            host=settings.inbound_host,
            port=settings.inbound_port,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_S,
            backlog=4096,
            proxy_headers=False,
            server_header=False,
        )
        # Everything loaded at start lives as long as the process: keep it out of the
        # collector's generations so that collections stay short (p99 latency).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve())
        log.info("started", extra={"host": settings.inbound_host, "port": settings.inbound_port})
        await asyncio.wait({serving, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping")
        server.should_exit = True
        try:
            await asyncio.wait_for(serving, GRACEFUL_S + 1)
        except TimeoutError:
            log.warning("in-flight requests did not finish in time")
    finally:
        stop_wait.cancel()
        try:
            await asyncio.wait_for(edge.close(), 3)
        except (TimeoutError, Exception):
            log.warning("stop timed out; closing anyway")


def run() -> None:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service="inbound")
    registry = load_registry_or_exit(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings, registry))
