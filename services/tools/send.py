"""`switchboard send`: publish one SendRequest as the flow engine would, optionally wait for its fate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aio_pika
from pydantic import ValidationError

from ..core.broker import Publisher, validation_reason
from ..core.models import SendRequest, new_uuid, now_iso
from ..core.settings import Settings
from .common import ToolError, open_broker
from .statuses import StatusFeed, status_binding

# What `--wait` does with each status of the message (exit codes are documented in the CLI help).
ACCEPTED = frozenset({"wired", "sent", "delivered"})  # the provider has it: exit 0
FINAL_FAILURE = "failed"  # exit 1; `queued` and `errored` (a retry is scheduled) keep waiting
EXIT_ACCEPTED, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3


def parse_id(value: str | None) -> int | str:
    """`--id`: digits become an integer (as RapidPro's ids are); default: the clock in microseconds."""
    if value is None:
        return time.time_ns() // 1000
    value = value.strip()
    return int(value) if value.isdigit() else value


def build_request(
    channel_uuid: str,
    to: str,
    text: str,
    *,
    msg_id: str | None = None,
    attachments: list[str] = (),
    quick_replies: list[str] = (),
) -> SendRequest:
    """A schema-valid SendRequest, or a ToolError (exit 2) naming each bad field."""
    try:
        return SendRequest(
            id=parse_id(msg_id),
            uuid=new_uuid(),
            channel_uuid=channel_uuid,
            to=to,
            text=text,
            attachments=list(attachments),
            quick_replies=list(quick_replies),
            created_on=now_iso(),
        )
    except ValidationError as exc:
        raise ToolError(f"not sent: {validation_reason(exc)}", exit_code=EXIT_INVALID) from None


def is_same_message(status: dict, request: SendRequest) -> bool:
    """Whether a status is about `request` (ids compared as text: `7` and `"7"` are one message)."""
    if request.uuid and status.get("uuid") == request.uuid:
        return True
    return status.get("id") is not None and str(status["id"]) == str(request.id)


async def send(
    settings: Settings,
    request: SendRequest,
    *,
    wait: bool = False,
    timeout: float = 60.0,
    on_status: Callable[[dict], None] = print,
    on_published: Callable[[str], None] = print,
) -> int:
    """Publish `request` to `sms.outbound` (confirmed); with `wait`, follow its statuses.

    The status queue is bound before the publish, so even a status published a millisecond
    later (the router's `failed` `channel_not_found`) is seen.
    """
    async with open_broker(settings) as connection:
        publisher = await Publisher(connection, settings).start()
        feed = await StatusFeed.open(connection, settings, status_binding(request.channel_uuid)) if wait else None
        routing_key = f"send.{request.channel_uuid}"
        try:
            await publisher.publish("sms.outbound", routing_key, request.to_bytes(), message_id=request.uuid)
        except aio_pika.exceptions.PublishError:
            raise ToolError(
                f"the broker did not take the message: no queue is bound to sms.outbound for {routing_key};"
                " declare the topology with `switchboard topology`"
            ) from None
        except aio_pika.exceptions.DeliveryError:
            raise ToolError("the broker refused (nacked) the message; it was not queued") from None
        except TimeoutError:
            raise ToolError("the broker did not confirm the message within 30 s; it may or may not be queued") from None
        on_published(f"published id={request.id} uuid={request.uuid} to {settings.name('sms.outbound')} {routing_key}")
        if feed is None:
            return EXIT_ACCEPTED
        return await follow(feed, request, timeout, on_status)


async def follow(feed: StatusFeed, request: SendRequest, timeout: float, on_status: Callable[[dict], None]) -> int:
    """Print the statuses of `request` until one settles it or `timeout` seconds pass."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                status = await feed.next()
                if not is_same_message(status, request):
                    continue
                on_status(status)
                if status.get("status") in ACCEPTED:
                    return EXIT_ACCEPTED
                if status.get("status") == FINAL_FAILURE:
                    return EXIT_FAILED
    except TimeoutError:
        return EXIT_TIMEOUT
