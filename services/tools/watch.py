"""`switchboard watch`: a live tail of `sms.status` through the tool's own queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..core.settings import Settings
from .common import open_broker, stop_on_signals
from .statuses import StatusFeed, status_binding


async def watch(
    settings: Settings,
    *,
    channel_uuid: str | None = None,
    status: str | None = None,
    count: int | None = None,
    on_status: Callable[[dict], None] = print,
    on_ready: Callable[[str], None] = print,
) -> int:
    """Call `on_status` for every matching status until Ctrl-C/SIGTERM (or `count` of them); 0."""
    binding = status_binding(channel_uuid, status)
    stop = stop_on_signals()
    async with open_broker(settings, robust=True) as connection:
        feed = await StatusFeed.open(connection, settings, binding)
        on_ready(f"watching {settings.name('sms.status')} {binding} (Ctrl-C to stop)")
        stopped = asyncio.ensure_future(stop.wait())
        seen = 0
        try:
            while count is None or seen < count:
                arrived = asyncio.ensure_future(feed.next())
                done, _ = await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if arrived not in done:
                    arrived.cancel()
                    break
                on_status(arrived.result())
                seen += 1
        finally:
            stopped.cancel()
    return 0
