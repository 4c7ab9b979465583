"""Test plumbing shared by every SMSC connector's tests and the bench: a channels file for
one connection pointing at a simulator, and a connector running in the current event loop.

The simulator is passed in already started (this package imports no simulator): anything
with ``port``, ``wait_for(predicate, timeout)`` and ``stop()``.
"""

from __future__ import annotations

import asyncio
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
from .connector import SmscConnector


def channels_yaml(protocol: str, name: str, port: int, channels: list[dict[str, Any]], *, list_key: str = "smsc_connections",
                  **connection: Any) -> str:  # fmt: skip
    """A channels file with `channels` (of type `protocol`, on connection `name`) and the
    connection itself under `list_key`."""
    conn = {"name": name, "host": "127.0.0.1", "port": port, "reconnect_s": [0.1, 0.2, 0.4], **connection}
    if list_key == "smsc_connections":
        conn = {"protocol": protocol, **conn}
    docs = [{"uuid": c["uuid"], "type": protocol, "connection": name, **{k: v for k, v in c.items() if k != "uuid"}} for c in channels]
    return yaml.safe_dump({"channels": docs, list_key: [conn]}, allow_unicode=True)


@dataclass
class Running:
    sim: Any
    runtime: Runtime
    connector: SmscConnector
    name: str
    channels: list[str]
    sent: list[SendRequest] = field(default_factory=list)

    @property
    def channel(self) -> str:
        return self.channels[0]

    @property
    def routing_key(self) -> str:
        return self.connector.transport

    async def send(self, publisher, text: str, to: str = "+250788123123", msg_id: int | str | None = None, **extra) -> SendRequest:
        """Publish a SendRequest to `sms.transport` for this connection (as the router does)."""
        request = SendRequest(id=msg_id if msg_id is not None else len(self.sent) + 1, uuid=str(uuid.uuid4()),
                              channel_uuid=self.channel, to=to, text=text, **extra)  # fmt: skip
        self.sent.append(request)
        await publisher.publish("sms.transport", self.routing_key, request.to_bytes(), message_id=f"{request.channel_uuid}:{request.id}")
        return request


@contextlib.asynccontextmanager
async def running(
    connector_class: type[SmscConnector],
    sim,
    channels_file: str,
    name: str,
    channel_uuids: list[str],
    *,
    bind_timeout: float | None = 5.0,
    **options: Any,
) -> AsyncIterator[Running]:
    """A connector of `connector_class` for connection `name` of `channels_file`, bound to the
    started simulator `sim`; both are torn down afterwards. `options`: connector keywords.
    `bind_timeout` None: do not wait for the login (wrong-password tests)."""
    registry: Registry = parse_channels(channels_file, "channels.yaml")
    runtime = Runtime(f"{connector_class.protocol}-{name}", Settings(), registry)
    try:
        await runtime.connect()
        connector = connector_class(runtime, registry.connections[name], **options)
        await connector.start()
        if bind_timeout is not None:
            assert await connector.link.wait_bound(bind_timeout), "the connector did not bind"
            assert await sim.wait_for(lambda: connector.consumer is not None and connector.consumer.consuming, 5)
        yield Running(sim, runtime, connector, name, channel_uuids)
    finally:
        runtime.stopping.set()
        await runtime.close()
        await sim.stop()


@contextlib.asynccontextmanager
async def running_connector(
    connector_class: type[SmscConnector],
    simulator_class,
    *,
    account: tuple[str, str],
    defaults: dict[str, Any],
    list_key: str = "smsc_connections",
    sim: dict[str, Any] | None = None,
    connection: dict[str, Any] | None = None,
    addresses: tuple[str, ...] = ("+250700000001",),
    bind_timeout: float | None = 5.0,
    **options: Any,
) -> AsyncIterator[Running]:
    """A simulator of `simulator_class` on an ephemeral port (its only account: `account`)
    and a connector bound to it, torn down afterwards.

    `sim`: simulator keywords; `connection`: connection keys over `defaults`; `addresses`:
    one channel per address; `options`: connector keywords. `bind_timeout` None: do not wait
    for the login (wrong-password tests)."""
    simulator = simulator_class(**{"accounts": dict([account]), "receipt_delay": 0.05, **(sim or {})})
    await simulator.start()
    name = f"sim{uuid.uuid4().hex[:8]}"
    channel_uuids = [str(uuid.uuid4()) for _ in addresses]
    docs = [{"uuid": u, "address": a, "country": "RW"} for u, a in zip(channel_uuids, addresses, strict=True)]
    text = channels_yaml(connector_class.protocol, name, simulator.port, docs, list_key=list_key,
                         **{**defaults, **(connection or {})})  # fmt: skip
    async with running(connector_class, simulator, text, name, channel_uuids, bind_timeout=bind_timeout, **options) as r:
        yield r


class ScriptedSmsc:
    """A TCP peer for session tests: every frame (STX..ETX) a client sends is kept in
    `received` and handed to `answer(frame_bytes)`, whose bytes (if any) are written back;
    :meth:`send` writes raw bytes, e.g. a malformed frame. Not an SMSC: a script of one."""

    def __init__(self, answer):
        self.answer = answer
        self.received: list[bytes] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> ScriptedSmsc:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        buffer = b""
        while data := await reader.read(65536):
            buffer += data
            while (end := buffer.find(b"\x03")) >= 0:
                frame, buffer = buffer[: end + 1], buffer[end + 1 :]
                self.received.append(frame)
                reply = self.answer(frame)
                if reply:
                    writer.write(reply)

    def send(self, data: bytes) -> None:
        for writer in self._writers:
            writer.write(data)

    async def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
