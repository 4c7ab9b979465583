"""Several copies of the SMSC connector as real processes on one connection, and what the
SMSC simulator saw of them (issue 13 item 3)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from services.core.models import SendRequest
from services.smpp_connector.testkit import PASSWORD, SYSTEM_ID, channels_yaml
from services.smsc_simulator import SmscSimulator

ROOT = Path(__file__).resolve().parents[2]


def busiest_second(stamps: list[float], span: float = 1.0) -> int:
    """The most events in any window [t, t + span) (one second by default)."""
    stamps = sorted(stamps)
    best = start = 0
    for end, t in enumerate(stamps):
        while t - stamps[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class Copies:
    sim: SmscSimulator
    name: str
    channel: str
    path: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", "smpp", "--connection", self.name],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip

    def bound(self) -> int:
        return len(self.sim.bound_sessions())

    def submit_times(self, since: float = 0.0) -> list[float]:
        return [s["at"] for s in list(self.sim.submits) if s["at"] >= since and s["status"] == "ESME_ROK"]

    async def send(self, publisher, count: int, first_id: int = 1) -> None:
        """Publish `count` SendRequests as the router would (confirms awaited 200 at a time)."""

        async def one(i: int) -> None:
            request = SendRequest(id=i, channel_uuid=self.channel, to="+250788123123", text=f"copy test {i}")
            await publisher.publish("sms.transport", f"smpp.{self.name}", request.to_bytes(),
                                    message_id=f"{self.channel}:{i}")  # fmt: skip

        ids = range(first_id, first_id + count)
        for start in range(0, count, 200):
            await asyncio.gather(*(one(i) for i in ids[start:start + 200]))

    def kill(self, index: int) -> None:
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(5)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def start_copies(tmp_path: Path, *, sim: dict | None = None, env: dict[str, str] | None = None,
                       **connection) -> Copies:  # fmt: skip
    """A simulator and a channels file for one connection (copies are started with .start())."""
    simulator = await SmscSimulator(**{"accounts": {SYSTEM_ID: PASSWORD}, "receipt_delay": 0.05, **(sim or {})}).start()
    name, channel = f"cp{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    path = tmp_path / f"{name}.yaml"
    path.write_text(channels_yaml(name, simulator.port, [{"uuid": channel, "address": "+250700000001"}], **connection))
    child_env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path), "LOG_LEVEL": "WARNING", **(env or {})}
    return Copies(simulator, name, channel, path, child_env)


async def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())
