"""The router (`switchboard run router`): `outbound.router` -> `sms.transport`.

It reads only what it needs to pick the transport (the channel and the expiry) and publishes
the body exactly as it arrived, so nothing the flow engine sent is lost or re-serialised.
`runtime.registry` is read per message, so a SIGHUP reload (handled by Runtime) applies to the
next message.

The router also reads `dead.statuses`, a copy of every dead letter: a SendRequest that the
broker parked itself (its delivery limit) gets its `failed` status here, code `dead_lettered`
(`dead_letter_notice` in core/broker.py). The router is the one worker every send passes.
"""

from __future__ import annotations

import logging

from ..core.broker import Delivery, dead_letter_notice
from ..core.channels import transport_key
from ..core.models import SendRequest, StatusError, StatusUpdate
from ..core.service import Runtime, run_service

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


def make_dead_letter_handler(runtime: Runtime):
    async def report(body: bytes, delivery: Delivery) -> None:
        status = dead_letter_notice(body, delivery.message.headers, runtime.settings)
        if status is not None:
            delivery.publish_status(status)
            log.warning("dead letter reported failed", extra={"channel": status.channel_uuid, "msg_id": status.id,
                                                               "reason": status.error.message})  # fmt: skip

    return report


async def setup(runtime: Runtime) -> None:
    await runtime.consume("outbound.router", make_handler(runtime), model=SendRequest, prefetch=PREFETCH)
    await runtime.consume("dead.statuses", make_dead_letter_handler(runtime), model=None, prefetch=DEAD_PREFETCH)


def main() -> None:
    """`switchboard run router` / `python -m services.outbound.router`."""
    run_service("router", setup)


if __name__ == "__main__":
    main()
