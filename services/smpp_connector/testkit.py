"""Test plumbing shared by the connector tests and the bench: a channels file for one SMPP
connection pointing at a simulator, and a connector running in the current event loop."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..core.channels import Registry, parse_channels
from ..core.models import SendRequest
from ..core.service import Runtime
from ..core.settings import Settings
from ..smsc_simulator import SmscSimulator
from .connector import SmppConnector

SYSTEM_ID = "switch"
PASSWORD = "s3cr3tpw"


def channels_yaml(name: str, port: int, channels: list[dict[str, Any]], **connection: Any) -> str:
    """A channels file with `channels` (smpp, on connection `name`) and the connection itself."""
    conn = {
        "name": name, "host": "127.0.0.1", "port": port, "system_id": SYSTEM_ID, "password": PASSWORD,
        "reconnect_s": [0.1, 0.2, 0.4], "enquire_link_s": 30, "window": 10, **connection,
    }  # fmt: skip
    docs = [{"uuid": c["uuid"], "type": "smpp", "connection": name, **{k: v for k, v in c.items() if k != "uuid"}} for c in channels]
    return yaml.safe_dump({"channels": docs, "smpp_connections": [conn]}, allow_unicode=True)


@dataclass
class Running:
    sim: SmscSimulator
    runtime: Runtime
    connector: SmppConnector
    name: str
    channels: list[str]
    sent: list[SendRequest] = field(default_factory=list)

    @property
    def channel(self) -> str:
        return self.channels[0]

    @property
    def routing_key(self) -> str:
        return f"smpp.{self.name}"

    async def send(self, publisher, text: str, to: str = "+250788123123", msg_id: int | str | None = None, **extra) -> SendRequest:
        """Publish a SendRequest to `sms.transport` for this connection (as the router does)."""
        request = SendRequest(id=msg_id if msg_id is not None else len(self.sent) + 1, uuid=str(uuid.uuid4()),
                              channel_uuid=self.channel, to=to, text=text, **extra)  # fmt: skip
        self.sent.append(request)
        await publisher.publish("sms.transport", self.routing_key, request.to_bytes(), message_id=f"{request.channel_uuid}:{request.id}")
        return request


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
    name = f"sim{uuid.uuid4().hex[:8]}"
    channel_uuids = [str(uuid.uuid4()) for _ in addresses]
    text = channels_yaml(name, simulator.port, [{"uuid": u, "address": a, "country": "RW"} for u, a in zip(channel_uuids, addresses, strict=True)],
                         **(connection or {}))  # fmt: skip
    registry: Registry = parse_channels(text, "channels.yaml")
    runtime = Runtime(f"smpp-{name}", Settings(), registry)
    try:
        await runtime.connect()
        connector = SmppConnector(runtime, registry.connections[name], **options)
        await connector.start()
        if bind_timeout is not None:
            assert await connector.link.wait_bound(bind_timeout), "the connector did not bind"
            assert await simulator.wait_for(lambda: connector.consumer is not None and connector.consumer.consuming, 5)
        yield Running(simulator, runtime, connector, name, channel_uuids)
    finally:
        runtime.stopping.set()
        await runtime.close()
        await simulator.stop()
