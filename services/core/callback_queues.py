"""The callbacks worker's queues (CONTRACT section 10, "Delivery of callbacks").

- `callbacks.status`: `sms.status` `status.*.<channel>` for every channel a front door sends on;
- `callbacks.inbound`: `sms.inbound` `msg.<channel>` for every channel whose inbound messages
  a door forwards (`mo.channels`, `mo_channels`);
- `callbacks.deliver`: the callbacks themselves, one job each, bound to `sms.transport`
  `callbacks`, so that a callback that must be tried again goes through the shared
  `retry.<delay_ms>` queues (CC `callbacks`) and comes back here, exactly like a SendRequest
  comes back to its transport queue.

They hang off the channels file, so they are declared wherever the file is read: by every
process at start (`Runtime.connect`: the edge must not publish a door's first SendRequest
before its statuses have somewhere to go) and by `switchboard topology`.
"""

from __future__ import annotations

from .broker import EXCHANGES, queue_arguments
from .channels import Registry
from .settings import Settings

STATUS_QUEUE = "callbacks.status"
INBOUND_QUEUE = "callbacks.inbound"
DELIVER_QUEUE = "callbacks.deliver"
DELIVER_KEY = "callbacks"


def door_channels(registry: Registry) -> tuple[list[str], list[str]]:
    """(channels whose statuses the doors report, channels whose inbound messages they forward)."""
    sent: dict[str, None] = {}
    fed: dict[str, None] = {}
    for door in registry.doors.values():
        sent[door.channel] = None
        for target in getattr(door, "smsc", {}).values():
            sent[target.lower()] = None
        for channel in door.fed_channels():
            fed[channel] = None
    return list(sent), list(fed)


def callback_bindings(registry: Registry) -> dict[str, tuple[str, list[str]]]:
    """Queue name (unprefixed) -> (exchange, routing keys); empty without front doors."""
    if not registry.doors:
        return {}
    sent, fed = door_channels(registry)
    return {
        STATUS_QUEUE: ("sms.status", [f"status.*.{c}" for c in sent]),
        INBOUND_QUEUE: ("sms.inbound", [f"msg.{c}" for c in fed]),
        DELIVER_QUEUE: ("sms.transport", [DELIVER_KEY]),
    }


async def declare_callback_queues(connection, settings: Settings, registry: Registry) -> list[str]:
    """Declare (idempotently) the queues and bindings above; returns the full queue names."""
    bindings = callback_bindings(registry)
    if not bindings:
        return []
    channel = await connection.channel()
    try:
        declared = []
        for name, (exchange_name, keys) in bindings.items():
            exchange = await channel.declare_exchange(settings.name(exchange_name), EXCHANGES[exchange_name], durable=True)
            queue = await channel.declare_queue(settings.name(name), durable=True, arguments=queue_arguments(settings, name))
            for key in keys:
                await queue.bind(exchange, routing_key=key)
            declared.append(settings.name(name))
        return declared
    finally:
        await channel.close()
