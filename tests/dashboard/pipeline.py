"""The demo pipeline as real processes, for the dashboard and flow engine tests: the SMSC
simulator, the router, an SMPP connector, the dashboard and (optionally) the example flow
engine, each a child process logging to a file under `logs`, all on this session's prefix.

Messages to numbers starting 999 are refused by the simulator (failed smpp_ESME_RINVDSTADR);
the others are wired, then delivered by a receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.tools.procs import ROOT, free_port

CHANNEL = "3b9e7c21-0d4f-4e6a-8b5c-6a1d2e3f4a22"
CONNECTION = "demosim"
PASSWORD = "demo-pw-123"

CHANNELS = """\
channels:
  - uuid: {channel}
    name: Demo SMPP
    type: smpp
    connection: {connection}
    address: "1234"
    country: RW
smpp_connections:
  - name: {connection}
    host: 127.0.0.1
    port: {port}
    system_id: sb
    password: {password}
    reconnect_s: [0.5, 1]
    enquire_link_s: 2
"""


@dataclass
class Pipeline:
    logs: Path
    env: dict[str, str]
    smpp_port: int
    control_port: int
    dashboard_port: int
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}/"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    async def start(self, name: str, *argv: str) -> asyncio.subprocess.Process:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT)
        out.close()
        self.procs[name] = proc
        return proc

    async def start_simulator(self) -> None:
        await self.start("simulator", sys.executable, "-m", "services.cli", "smsc-sim", "--port", str(self.smpp_port),
                         "--control-port", str(self.control_port), "--system-id", "sb", "--receipt-delay", "0.2",
                         "--error-prefix", "+999=ESME_RINVDSTADR")  # fmt: skip
        await wait_http(self.control_url + "/health")

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        if proc.returncode is None:
            proc.send_signal(sig)
            await asyncio.wait_for(proc.wait(), 15)

    async def wait_bound(self, timeout: float = 20) -> None:
        """Until the simulator has a bound receiver (its /mo answers something else than 409)."""
        await self.inject_mo("+250788000000", "ping", timeout=timeout)

    async def inject_mo(self, sender: str, text: str, timeout: float = 20) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                answer = await client.post(self.control_url + "/mo", json={"from": sender, "to": "1234", "text": text})
                if answer.status_code == 200:
                    return answer.json()
                assert loop.time() < deadline, f"the simulator has no bound receiver: {answer.status_code} {answer.text}"
                await asyncio.sleep(0.3)

    async def sent_to_phones(self) -> list[dict]:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(self.control_url + "/messages")).json()["messages"]


async def wait_http(url: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await client.get(url, timeout=1)
                return
            except httpx.TransportError:
                assert loop.time() < deadline, f"{url} did not answer within {timeout} s"
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def demo_pipeline(logs: Path, *, dashboard: bool = True, flow_engine: bool = False, heartbeat_s: float = 1.0):
    logs.mkdir(parents=True, exist_ok=True)
    smpp_port, control_port, dashboard_port = free_port(), free_port(), free_port()
    channels = logs / "channels.yaml"
    channels.write_text(CHANNELS.format(channel=CHANNEL, connection=CONNECTION, port=smpp_port, password=PASSWORD))
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(channels), "SWITCHBOARD_HEARTBEAT_S": str(heartbeat_s),
           "DASHBOARD_PORT": str(dashboard_port), "DASHBOARD_HOST": "127.0.0.1", "SMSC_SIM_PASSWORD": PASSWORD,
           "PYTHONUNBUFFERED": "1", "METRICS_PORT": "0"}  # fmt: skip
    pipeline = Pipeline(logs, env, smpp_port, control_port, dashboard_port)
    cli = (sys.executable, "-m", "services.cli")
    try:
        await pipeline.start_simulator()
        await pipeline.start("router", *cli, "run", "router")
        await pipeline.start("smpp", *cli, "run", "smpp", "--connection", CONNECTION)
        if dashboard:
            await pipeline.start("dashboard", *cli, "run", "dashboard")
            await wait_http(pipeline.dashboard_url)
        if flow_engine:
            await pipeline.start("flow-engine", sys.executable, str(ROOT / "examples" / "flow_engine.py"))
        yield pipeline
    finally:
        for name in list(pipeline.procs):
            proc = pipeline.procs[name]
            if proc.returncode is None:
                proc.terminate()
        for proc in pipeline.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 12)
            except TimeoutError:
                proc.kill()
                await proc.wait()
