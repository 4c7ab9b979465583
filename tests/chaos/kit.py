"""What the fault tests share: a redis-server of their own, a counting HTTP sink, workers run
as real processes that can be killed -9, and a status tap that keeps arrival times.

Never the shared Redis: a test's redis-server listens on a free port, keeps its data in a
temporary folder (append-only file, fsync always, so a kill -9 loses nothing written) and is
killed and restarted at will. `SWITCHBOARD_CHAOS_ROOT` runs the workers from another checkout
(say, `git archive main`) to measure the code before a change against the same test.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.tools.procs import ROOT, free_port

CODE_ROOT = Path(os.environ.get("SWITCHBOARD_CHAOS_ROOT") or ROOT)


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A redis-server on a free loopback port, persisted to `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> float:
        """Start and wait until it answers; returns the monotonic time it did."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers(self.port):
                return time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class CountingSink(asyncio.Protocol):
    """HTTP/1.1 keep-alive sink answering `200 ok`; counts requests by their `?id=`."""

    def __init__(self, counts: Counter):
        self.counts = counts
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = 0
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                break
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            msg_id = parse_qs(urlsplit(target).query).get("id", ["?"])[0]
            self.counts[msg_id] += 1
            self.buffer = self.buffer[end + 4 + length:]
            replies += 1
        if replies:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok" * replies)


async def start_sink() -> tuple[asyncio.AbstractServer, int, Counter]:
    counts: Counter = Counter()
    port = free_port()
    server = await asyncio.get_running_loop().create_server(lambda: CountingSink(counts), "127.0.0.1", port)
    return server, port, counts


@dataclass
class Worker:
    """`switchboard run <args>` as a child process; its stdout (JSON log lines) goes to a file."""

    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        self.starts += 1
        log = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.cli", "run", *self.args,
                cwd=CODE_ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            log.close()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def terminate(self, timeout: float = 12) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return None

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_bytes().splitlines():
            if raw.startswith(b"{"):
                try:
                    lines.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    pass
        return lines


@dataclass
class StatusLog:
    """Every StatusUpdate seen, with the monotonic time it arrived."""

    seen: list[tuple[float, dict]] = field(default_factory=list)

    async def open(self, connection, exchange_name: str) -> None:
        self._channel = await connection.channel()
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange_name, routing_key="#")

        async def on_message(message):
            self.seen.append((time.monotonic(), orjson.loads(message.body)))
            await message.ack()

        await queue.consume(on_message)

    async def close(self) -> None:
        await self._channel.close()

    def final(self) -> dict:
        """id -> the set of final statuses (wired or failed) seen for it."""
        out: dict = {}
        for _, status in self.seen:
            if status["status"] in ("wired", "failed", "sent", "delivered"):
                out.setdefault(status["id"], set()).add(status["status"])
        return out
