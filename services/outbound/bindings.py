"""Channel bindings: the broker routes `send.<channel>` straight to the channel's transport queue.

The flow engine publishes to `sms.outbound`, which passes `send.#` to `sms.outbound.channels`.
There, one binding per channel (`send.<uuid>` -> `transport.<transport key>`) delivers the
message to its connector without a hop through the router. What no binding matches (an unknown
channel, or a channel whose binding is being moved) goes through the alternate exchange to
`outbound.router`, where the router answers `failed` `channel_not_found` or forwards it by the
channels file as before. So a binding that is late or missing costs a hop, never a message.

Who owns what: the router owns the `send.*` bindings on `sms.outbound.channels` and records
each one it made in a Redis set (AMQP cannot list bindings). A sync reads the channels file
afresh, unbinds what the record has and the file no longer wants, then binds everything the
file wants. Syncs run under a Redis lock, so two routers (or a router and `switchboard
topology`) never interleave: whichever syncs last read the newest file, and both compute the
same bindings from it. Unbinding first makes a moved channel pass through the router (which
already reads the new file) for a moment, instead of reaching both transports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiormq

from ..core.broker import CHANNELS, declare_topology
from ..core.channels import Registry, load_channels, transport_key
from ..core.settings import Settings

log = logging.getLogger(__name__)

LEDGER = "router:bindings"  # Redis set of "<queue> <routing key>", unprefixed queue names
LOCK = "router:bindings:lock"
LOCK_TIMEOUT_S = 60  # a sync of thousands of channels takes seconds; a dead holder blocks no longer than this


def transport_queue(channel) -> str:
    """The queue a channel's SendRequests are consumed from (CONTRACT section 4)."""
    return f"transport.{transport_key(channel)}"


def wanted(registry: Registry) -> set[str]:
    """Every binding the channels file asks for, as ledger entries."""
    return {f"{transport_queue(channel)} send.{channel.uuid}" for channel in registry.channels.values()}


@dataclass
class Sync:
    registry: Registry
    bound: int
    removed: list[str]


async def sync_bindings(connection, settings: Settings, redis, load: Callable[[], Registry] | None = None,
                        on_loaded: Callable[[Registry], None] | None = None) -> Sync:  # fmt: skip
    """Make the broker's channel bindings match the channels file (see the module docstring).

    `on_loaded` gets the registry read under the lock before any binding changes, so the
    router routes by it by the time a moved channel's old binding is gone."""
    load = load or (lambda: load_channels(settings.channels_file))
    ledger = settings.name(LEDGER)
    async with redis.lock(settings.name(LOCK), timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S):
        registry = load()
        if on_loaded is not None:
            on_loaded(registry)
        await declare_topology(connection, settings, transports=registry.transports())
        want = wanted(registry)
        owned = {entry.decode() for entry in await redis.smembers(ledger)}
        stale = sorted(owned - want)
        exchange = settings.name(CHANNELS)
        channel = await connection.channel()
        try:
            amqp = await channel.get_underlay_channel()
            for entry in stale:
                queue, key = entry.split(" ", 1)
                try:
                    await amqp.queue_unbind(settings.name(queue), exchange, key)
                except aiormq.exceptions.ChannelNotFoundEntity:  # the queue is gone, and its bindings with it
                    await channel.close()
                    channel = await connection.channel()
                    amqp = await channel.get_underlay_channel()
                await redis.srem(ledger, entry)
            if want:
                await redis.sadd(ledger, *want)  # recorded before binding: a crash leaves no orphan
            for entry in sorted(want):
                queue, key = entry.split(" ", 1)
                await amqp.queue_bind(settings.name(queue), exchange, key)
        finally:
            await channel.close()
    return Sync(registry, len(want), stale)
