"""One Switchboard behind its front doors, in the test's event loop, over real sockets.

The SMSC simulator (SMPP over TCP), the router, the SMPP connector, the inbound edge under
uvicorn on a real port, the callbacks worker (in-process, or none when a test runs it as a
process of its own), a mock courier (real HTTP) that the doors call back, and the channels
file on disk. Everything talks through the real broker and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.core.channels import Registry, parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.inbound.app import create_app
from services.inbound.edge import Edge
from services.inbound.server import _Server
from services.outbound import router
from services.outbound.callbacks import Callbacks
from services.smpp_connector.connector import SmppConnector
from services.smsc_simulator import SmscSimulator

from .courier import MockCourier

KN_USER, KN_PASSWORD = "rapidpro", "kn-s3cret-pw"
EX_TOKEN = "ex-t0ken-value-42"
SYSTEM_ID, SMPP_PASSWORD = "switch", "s3cr3tpw"
ADDRESS, ADDRESS_2 = "+250700000001", "+250700000002"
KN_CHANNEL = "b1c2d3e4-0000-4000-8000-00000000c0de"  # RapidPro's KN channel (only in URLs)
EX_CHANNEL = "b1c2d3e4-0000-4000-8000-00000000e0e0"
MO_URL = "/c/kn/{kn}/receive?backend=%i&sender=%p&message=%b&ts=%T&id=%I&to=%P"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rig:
    courier: MockCourier
    sim: SmscSimulator
    settings: Settings
    registry: Registry
    channels_file: Path
    channel: str  # the SMPP channel both doors send on
    channel_2: str  # a second one: the `smsc=second` target and the EX door's MO channel
    connection: str
    edge_url: str

    def dlr_url(self, msg_id: int | str) -> str:
        """What courier's KN handler puts in `dlr-url` (older versions: `id=`)."""
        return f"{self.courier.base}/c/kn/{KN_CHANNEL}/status?id={msg_id}&status=%d"

    def dlrs(self, msg_id) -> list[int]:
        """The report types courier received (answered 2xx) for one message, in order."""
        return [int(r.query["status"]) for r in self.courier.answered(lambda r: r.path.endswith("/status") and r.query.get("id") == str(msg_id))]


def channels_yaml(courier: MockCourier, sim_port: int, connection: str, channel: str, channel_2: str) -> str:
    doc = {
        "channels": [
            {"uuid": channel, "type": "smpp", "connection": connection, "address": ADDRESS, "country": "RW"},
            {"uuid": channel_2, "type": "smpp", "connection": connection, "address": ADDRESS_2, "country": "RW"},
        ],
        "smpp_connections": [{
            "name": connection, "host": "127.0.0.1", "port": sim_port, "system_id": SYSTEM_ID, "password": SMPP_PASSWORD,
            "reconnect_s": [0.1, 0.2, 0.4], "window": 10,
        }],
        "front_doors": [
            {"name": "rapidpro-kn", "kind": "kannel", "username": KN_USER, "password": KN_PASSWORD, "channel": channel,
             "smsc": {"second": channel_2}, "max_parts": 3,
             "mo": {"url": courier.base + MO_URL.format(kn=KN_CHANNEL), "channels": [channel]}},
            {"name": "rapidpro-ex", "kind": "external", "token": EX_TOKEN, "channel": channel,
             "callback_base": f"{courier.base}/c/ex/{EX_CHANNEL}", "mo_channels": [channel_2]},
        ],
    }  # fmt: skip
    return yaml.safe_dump(doc, allow_unicode=True)


async def purge(settings: Settings, runtime: Runtime, *queues: str) -> None:
    channel = await runtime.connection.channel()
    try:
        for name in queues:
            queue = await channel.get_queue(settings.name(name), ensure=False)
            await queue.purge()
    finally:
        await channel.close()


@contextlib.asynccontextmanager
async def door_rig(tmp_path: Path, *, callbacks: bool = True, retry_ms: str = "300,600,1200", receipt_delay: float = 0.05):
    courier = await MockCourier().start()
    sim = await SmscSimulator(accounts={SYSTEM_ID: SMPP_PASSWORD}, receipt_delay=receipt_delay).start()
    connection = f"door{uuid.uuid4().hex[:8]}"
    channel, channel_2 = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(channels_yaml(courier, sim.port, connection, channel, channel_2))
    registry = parse_channels(path.read_text(), str(path))
    port = free_port()
    settings = Settings(SWITCHBOARD_CHANNELS=str(path), SWITCHBOARD_RETRY_DELAYS_MS=retry_ms,
                        SWITCHBOARD_PUBLIC_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    runtimes: list[Runtime] = []
    server = None
    edge = None
    try:
        router_rt = Runtime("router", settings, registry)
        runtimes.append(router_rt)
        await router_rt.connect()
        await purge(settings, router_rt, "callbacks.deliver", "callbacks.status", "callbacks.inbound")
        await router.setup(router_rt)
        smpp_rt = Runtime("smpp", settings, registry)
        runtimes.append(smpp_rt)
        await smpp_rt.connect()
        connector = SmppConnector(smpp_rt, registry.connections[connection], receipt_lookup_delays_s=(0.1, 0.2, 0.4))
        await connector.start()
        assert await connector.link.wait_bound(5), "the connector did not bind"
        edge = Edge(Runtime("inbound", settings, registry))
        await edge.start()
        import uvicorn

        config = uvicorn.Config(create_app(edge), host="127.0.0.1", port=port, loop="none", http="httptools",
                                lifespan="off", access_log=False, log_config=None)  # fmt: skip
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started, "the edge did not start"
        if callbacks:
            cb_rt = Runtime("callbacks", settings, registry)
            runtimes.append(cb_rt)
            await cb_rt.connect()
            await Callbacks(cb_rt).start()
        yield Rig(courier, sim, settings, registry, path, channel, channel_2, connection, f"http://127.0.0.1:{port}")
    finally:
        for runtime in reversed(runtimes):
            runtime.stopping.set()
            with contextlib.suppress(Exception):
                await runtime.close()
        if server is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 5)
        if edge is not None:
            await edge.close()
        await sim.stop()
        await courier.stop()
