"""Test plumbing of the SMPP connector tests and the bench: the shared SMSC test kit
(:mod:`services.smsc.testkit`) with the SMPP simulator and SMPP connection defaults."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..smsc import testkit
from ..smsc.testkit import Running
from ..smsc_simulator import SmscSimulator
from .connector import SmppConnector

SYSTEM_ID = "switch"
PASSWORD = "s3cr3tpw"

__all__ = ["PASSWORD", "SYSTEM_ID", "Running", "channels_yaml", "running_connector"]


def channels_yaml(name: str, port: int, channels: list[dict[str, Any]], **connection: Any) -> str:
    """A channels file with `channels` (smpp, on connection `name`) and the connection itself."""
    defaults = {"system_id": SYSTEM_ID, "password": PASSWORD, "enquire_link_s": 30, "window": 10}
    return testkit.channels_yaml("smpp", name, port, channels, list_key="smpp_connections", **{**defaults, **connection})


@contextlib.asynccontextmanager
async def running_connector(
    *,
    sim: dict[str, Any] | None = None,
    connection: dict[str, Any] | None = None,
    addresses: tuple[str, ...] = ("+250700000001",),
    bind_timeout: float | None = 5.0,
    **options: Any,
) -> AsyncIterator[Running]:
    """A simulator on an ephemeral port and a connector bound to it, torn down afterwards.

    `sim`: SmscSimulator keywords; `connection`: smpp_connections keys; `addresses`: one SMPP
    channel per address; `options`: SmppConnector keywords. `bind_timeout` None: do not wait
    for the bind (wrong-password tests)."""
    simulator = SmscSimulator(**{"accounts": {SYSTEM_ID: PASSWORD}, "receipt_delay": 0.05, **(sim or {})})
    await simulator.start()
    name = testkit.new_name()
    channel_uuids = [str(uuid.uuid4()) for _ in addresses]
    docs = [{"uuid": u, "address": a, "country": "RW"} for u, a in zip(channel_uuids, addresses, strict=True)]
    text = channels_yaml(name, simulator.port, docs, **(connection or {}))
    async with testkit.running(SmppConnector, simulator, text, name, channel_uuids, bind_timeout=bind_timeout, **options) as r:
        yield r
