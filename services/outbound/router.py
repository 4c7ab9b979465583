"""The router (`switchboard run router`): channel bindings, and `outbound.router` -> `sms.transport`.

The broker routes a known channel's SendRequests itself, by bindings the router keeps in step
with the channels file at start and on SIGHUP (bindings.py). The router's queue gets only what
no binding matched: unknown channels become `failed` `channel_not_found`; a known channel whose
binding is not in place yet is forwarded to its transport. It reads only what it needs to pick
the transport (the channel and the expiry) and publishes the body exactly as it arrived, so
nothing the flow engine sent is lost or re-serialised.

The router also reads `dead.statuses`, a copy of every dead letter: a SendRequest that the
broker parked itself (its delivery limit) gets its `failed` status here, code `dead_lettered`
(`dead_letter_notice` in core/broker.py), since the router already answers for what cannot be sent.
"""

from __future__ import annotations

import asyncio
import logging

from ..core.broker import Delivery, dead_letter_notice
from ..core.channels import transport_key
from ..core.models import SendRequest, StatusError, StatusUpdate
from ..core.service import Runtime, run_service
from .bindings import sync_bindings

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

#: Routing is a lookup and a publish, so many messages can wait for their confirms at once.
PREFETCH = 500
DEAD_PREFETCH = 50


def failed(request: SendRequest, code: str, message: str, transport: str | None) -> StatusUpdate:
    return StatusUpdate(
        id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status="failed",
        transport=transport, attempt=request.attempt, error=StatusError(code=code, message=message),
    )  # fmt: skip


def make_handler(runtime: Runtime):
    async def route(request: SendRequest, delivery: Delivery) -> None:
        channel = runtime.registry.get(request.channel_uuid)
        if channel is None:
            delivery.publish_status(failed(request, "channel_not_found", f"no channel {request.channel_uuid}", None))
            return
        key = transport_key(channel)
        if request.expires_on and request.expired():
            delivery.publish_status(failed(request, "expired", f"expired on {request.expires_on}", key))
            return
        message = delivery.message
        delivery.publish("sms.transport", key, message.body, message_id=message.message_id)

    return route


class Binder:
    """Runs binding syncs one at a time: at start, then once per SIGHUP."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    async def sync(self) -> None:
        runtime = self.runtime

        def loaded(registry) -> None:
            runtime.registry = registry

        async with self._lock:
            try:
                done = await sync_bindings(runtime.connection, runtime.settings, runtime.redis, on_loaded=loaded)
            except Exception as exc:  # Redis or broker away, or a broken file: the router still routes
                log.error("channel bindings not updated; the router routes every message meanwhile",
                          extra={"error": str(exc)[:300]})  # fmt: skip
                return
        log.info("channel bindings in step with the channels file", extra={"bound": done.bound, "removed": len(done.removed)})

    def reload(self, _registry) -> None:
        task = asyncio.ensure_future(self.sync())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)


def make_dead_letter_handler(runtime: Runtime):
    async def report(body: bytes, delivery: Delivery) -> None:
        status = dead_letter_notice(body, delivery.message.headers, runtime.settings)
        if status is not None:
            delivery.publish_status(status)
            log.warning("dead letter reported failed", extra={"channel": status.channel_uuid, "msg_id": status.id,
                                                               "reason": status.error.message})  # fmt: skip

    return report


async def setup(runtime: Runtime) -> None:
    binder = Binder(runtime)
    await binder.sync()  # first, so that a router that consumes (is ready) has its bindings in place
    await runtime.consume("outbound.router", make_handler(runtime), model=SendRequest, prefetch=PREFETCH)
    runtime.on_reload.append(binder.reload)
    runtime.on_stop.append(binder.stop)
    await runtime.consume("dead.statuses", make_dead_letter_handler(runtime), model=None, prefetch=DEAD_PREFETCH)


def main() -> None:
    """`switchboard run router` / `python -m services.outbound.router`."""
    run_service("router", setup)


if __name__ == "__main__":
    main()
