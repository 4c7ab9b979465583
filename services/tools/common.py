"""What the operator tools share: one short-lived broker connection and status formatting."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import aio_pika
import orjson
from aio_pika.abc import AbstractConnection

from ..core.broker import open_connection
from ..core.redact import redact
from ..core.settings import Settings


class ToolError(Exception):
    """A problem the operator can fix; printed as one line, never as a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def broker_address(settings: Settings) -> str:
    """RABBITMQ_URL with its password masked, for messages."""
    return redact(settings.rabbitmq_url)


@contextlib.asynccontextmanager
async def open_broker(settings: Settings, *, robust: bool = False) -> AsyncIterator[AbstractConnection]:
    """One connection for one command; a broker that does not answer is a ToolError, not a trace.

    `robust` (for long tails such as `watch`) reconnects and re-declares the tool's queue by
    itself once the first connection succeeded.
    """
    connection, problem = None, None
    for start, url in enumerate(settings.rabbitmq_urls):  # a cluster's nodes, in turn
        try:
            if robust:
                connection = await open_connection(settings.rabbitmq_urls, start=start, timeout=10)
            else:
                connection = await aio_pika.connect(url, timeout=10, client_properties={"connection_name": "switchboard-cli"})
            break
        except Exception as exc:  # refused, DNS, auth, timeout: all mean "fix RABBITMQ_URL or start the broker"
            problem = exc
    if connection is None:
        raise ToolError(f"cannot reach RabbitMQ at {broker_address(settings)}: {problem or type(problem).__name__}") from None
    try:
        yield connection
    finally:
        await connection.close()


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so that tails end with exit 0 instead of a trace."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def status_line(status: dict) -> str:
    """A StatusUpdate as one readable line (`--json` prints the body itself instead)."""
    parts = [str(status.get("timestamp", "-")), f"{status.get('status', '?'):<9}", f"channel={status.get('channel_uuid')}"]
    if status.get("id") is not None:
        parts.append(f"id={status['id']}")
    if status.get("uuid"):
        parts.append(f"uuid={status['uuid']}")
    for key in ("external_id", "transport", "attempt"):
        if status.get(key) not in (None, ""):
            parts.append(f"{key}={status[key]}")
    error = status.get("error")
    if isinstance(error, dict):
        parts.append(f"error={error.get('code')}: {error.get('message', '')}".rstrip(": "))
        if error.get("retry_in_ms") is not None:
            parts.append(f"retry_in_ms={error['retry_in_ms']}")
    return "  ".join(parts)


def json_line(data: dict) -> str:
    return orjson.dumps(data).decode()
