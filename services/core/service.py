"""Process lifecycle shared by every worker: settings, logging, channels, broker, signals.

A worker is a `setup(runtime)` coroutine that registers consumers (and whatever else it
needs); `run_service` does the rest: it validates the channels file before touching the
broker (exit 2 on a broken file), reconnects by itself, reloads channels on SIGHUP and on
SIGTERM stops consuming, lets in-flight messages finish and exits 0 within 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .broker import Consumer, Handler, Publisher, connect, declare_topology
from .callback_queues import declare_callback_queues
from .channels import ChannelsError, Registry, load_channels
from .heartbeat import HeartbeatPublisher, Source
from .logs import setup_logging
from .metrics import serve_metrics
from .outage import PROBE_TIMEOUT_S, OutageGate
from .settings import Settings, get_settings

log = logging.getLogger(__name__)


class Runtime:
    """Everything a worker shares: settings, channels, broker connection, publisher, Redis."""

    def __init__(self, name: str, settings: Settings, registry: Registry):
        self.name = name
        self.settings = settings
        self.registry = registry
        self.connection = None
        self.publisher: Publisher | None = None
        self.consumers: list[Consumer] = []
        self.stopping = asyncio.Event()
        self.on_reload: list[Callable[[Registry], None]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self._redis: aioredis.Redis | None = None
        self.heartbeat: HeartbeatPublisher | None = None
        # Extra heartbeat fields (an SMSC connector's bind state): see core/heartbeat.py.
        self.health_sources: list[Source] = []
        self._probe_client: aioredis.Redis | None = None
        # Redis is the one dependency a handler may wait for (services/core/outage.py).
        self.gate = OutageGate(self._probe_redis)

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.from_url(self.settings.redis_url)
        return self._redis

    async def _probe_redis(self) -> None:
        """One PING, no retries, short timeouts: the gate asks often and must hear the truth."""
        if self._probe_client is None:
            self._probe_client = aioredis.from_url(
                self.settings.redis_url, retry=Retry(NoBackoff(), 0),
                socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S,
            )  # fmt: skip
        await self._probe_client.ping()

    def key(self, name: str) -> str:
        """A Redis key in this installation's namespace."""
        return self.settings.name(name)

    async def connect(self) -> None:
        self.connection = await connect(self.settings)
        await declare_topology(self.connection, self.settings, transports=self.registry.transports())
        await declare_callback_queues(self.connection, self.settings, self.registry)  # front doors (section 10)
        self.publisher = await Publisher(self.connection, self.settings).start()
        self.heartbeat = HeartbeatPublisher(self.connection, self.settings, self.name, self.describe)
        self.heartbeat.sources = self.health_sources
        await self.heartbeat.start()

    def describe(self) -> dict:
        """The runtime's part of each heartbeat: the queues consumed and what is in flight."""
        return {
            "queues": sorted({self.settings.name(c.queue_name) for c in self.consumers}),
            "in_flight": sum(c.in_flight for c in self.consumers),
        }

    async def consume(
        self, queue: str, handler: Handler, *, model: type[BaseModel] | None, prefetch: int = 64, transport: str | None = None
    ) -> Consumer:
        consumer = Consumer(
            self.connection, self.publisher, self.settings, queue, handler,
            model=model, prefetch=prefetch, service=self.name, transport=transport, gate=self.gate,
        )
        await consumer.start()
        self.consumers.append(consumer)
        return consumer

    def reload(self) -> None:
        try:
            registry = load_channels(self.settings.channels_file)
        except ChannelsError as exc:
            log.error("channels reload failed; keeping the previous file", extra={"problems": exc.problems})
            return
        self.registry = registry
        for callback in self.on_reload:
            callback(registry)
        log.info("channels reloaded", extra={"channels": len(registry.channels)})

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for callback in self.on_stop:
            await callback()
        if self.heartbeat is not None:
            await self.heartbeat.close()
        if self.publisher is not None:
            await self.publisher.close()
        if self.connection is not None:
            await self.connection.close()
        await self.gate.close()
        for client in (self._redis, self._probe_client):
            if client is not None:
                await client.aclose()


def load_registry_or_exit(settings: Settings) -> Registry:
    try:
        return load_channels(settings.channels_file)
    except ChannelsError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        sys.exit(2)


async def serve(name: str, setup: Callable[[Runtime], Awaitable[None]], settings: Settings, registry: Registry) -> None:
    runtime = Runtime(name, settings, registry)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, runtime.stopping.set)
    loop.add_signal_handler(signal.SIGINT, runtime.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload)
    metrics_server = None
    try:
        await runtime.connect()
        if settings.metrics_port:
            metrics_server = await serve_metrics(settings.metrics_port, ready=lambda: not runtime.connection.is_closed)
        await setup(runtime)
        log.info("started")  # `service` is on every record already (setup_logging)
        await runtime.stopping.wait()
        log.info("stopping")
    finally:
        try:
            await asyncio.wait_for(runtime.close(), 9)
        except (TimeoutError, Exception):
            log.warning("stop timed out; unacked messages return to their queues")
        if metrics_server is not None:
            metrics_server.close()


def run_service(name: str, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    """Entry point of `switchboard run <name>` and `python -m services.<name>`."""
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service=name)
    registry = load_registry_or_exit(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(name, setup, settings, registry))
