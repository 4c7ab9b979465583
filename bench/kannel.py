"""Kannel as the bench's baseline: bearerbox + smsbox with its smpp, emi or cimd2 driver,
driven over HTTP.

Operators compare Switchboard with the Kannel they run today, so the `smpp`, `ucp` and `cimd2`
scenarios run Debian's Kannel against the same simulator, window and N as our pipeline (the
driver's group follows shared/SMSC_PROTOCOLS.md section 3.3; Kannel's cimd2 driver only does
stop-and-wait, so it takes window 1). Messages go in
through smsbox's `sendsms` (one keep-alive HTTP/1.1 GET each, sent by a bare asyncio client
so the bench process spends little CPU) with `dlr-mask` 11 (delivered, failed, SMSC ack) and a
`dlr-url` on a local asyncio server that counts the callbacks: the SMSC ack (type 8) stands
for our `wired`, type 1 for `delivered`. Kannel runs with its defaults otherwise: internal DLR
storage and no store file (it keeps queued messages in memory, which our pipeline does not).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

from bench.common import cpu_seconds

SYSTEM_ID, PASSWORD = "bench", "bench-password"  # what the simulator's bench binds use
DLR_MASK = 1 | 2 | 8  # delivered, failed, SMSC ack
CLIENTS = 32  # concurrent sendsms connections
SENDER = "+250700000001"  # the bench channel's address, as in the pipeline
# Warnings and worse on the console: by default both boxes print every PDU and DLR at debug
# level, which costs Kannel CPU (tens of MB per run) that no operator's setup pays.
QUIET = ("-v", "2")
DRIVERS = {"smpp": "smpp", "ucp": "emi", "cimd2": "cimd2"}  # our protocol name -> Kannel's driver


def ensure_kannel() -> str | None:
    """None when bearerbox and smsbox can run; otherwise why not (Debian's `kannel` is installed
    when missing and we are root)."""
    if shutil.which("bearerbox") and shutil.which("smsbox"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "Kannel skipped: bearerbox/smsbox not found and not root to `apt-get install -y kannel`"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "kannel"], env=env, capture_output=True, text=True)
    if result.returncode != 0 or not shutil.which("bearerbox"):
        return f"Kannel skipped: apt-get install -y kannel failed: {result.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def smsc_group(protocol: str, smsc_port: int, window: int) -> str:
    """The `group = smsc` of Kannel's driver for `protocol`, pointed at the simulator."""
    common = f"""group = smsc
smsc = {DRIVERS[protocol]}
smsc-id = sim
host = 127.0.0.1
port = {smsc_port}
smsc-username = {SYSTEM_ID}
smsc-password = {PASSWORD}
"""
    if protocol == "smpp":
        return common + f"""receive-port = 0
transceiver-mode = true
system-type = ""
interface-version = 34
source-addr-ton = 1
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1
max-pending-submits = {window}
enquire-link-interval = 30
"""
    if protocol == "ucp":
        return common + f"keepalive = 30\nwait-ack = 60\nwindow = {window}\nreconnect-delay = 1\n"
    if window != 1:
        raise ValueError(f"Kannel's cimd2 driver is stop-and-wait: window must be 1, not {window}")
    return common + "keepalive = 30\nreconnect-delay = 1\n"


def config(logs: Path, smsc_port: int, window: int, ports: dict[str, int], protocol: str = "smpp") -> str:
    return f"""
group = core
admin-port = {ports["admin"]}
admin-password = bench
smsbox-port = {ports["smsbox"]}
box-allow-ip = 127.0.0.1
log-file = "{logs}/kannel-bearerbox.log"
log-level = 3
dlr-storage = internal

{smsc_group(protocol, smsc_port, window)}
group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {ports["sendsms"]}
log-file = "{logs}/kannel-smsbox.log"
log-level = 3

group = sendsms-user
username = bench
password = bench
max-messages = 1

group = sms-service
keyword = default
text = "no service"
max-messages = 0
"""


class DlrCounter(asyncio.Protocol):
    """The `dlr-url` server: `GET /dlr?i=<n>&t=<type>`, answered 200, counted per type."""

    counts: dict[int, set[int]] = {}
    last: dict[int, float] = {}
    want = 0
    done: asyncio.Event | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = head.split(b" ", 2)[1]
            query = dict(p.split(b"=", 1) for p in path.split(b"?", 1)[-1].split(b"&") if b"=" in p)
            try:
                kind, msg_id = int(query[b"t"]), int(query[b"i"])
            except (KeyError, ValueError):
                kind, msg_id = 0, -1
            cls = type(self)
            cls.counts.setdefault(kind, set()).add(msg_id)
            cls.last[kind] = time.perf_counter()
            if len(cls.counts.get(1, ())) >= cls.want and len(cls.counts.get(8, ())) >= cls.want and cls.done:
                cls.done.set()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    @classmethod
    def reset(cls, want: int) -> None:
        cls.counts, cls.last, cls.want, cls.done = {}, {}, want, asyncio.Event()


async def _sendsms(port: int, dlr_port: int, ids: range, text: str, to: str) -> None:
    """Every id once, over CLIENTS keep-alive connections; a refused request is an error."""
    queue = iter(ids)

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for msg_id in queue:
                dlr_url = f"http://127.0.0.1:{dlr_port}/dlr?i={msg_id}&t=%d"
                query = urlencode({"username": "bench", "password": "bench", "from": SENDER, "to": to, "text": text,
                                   "dlr-mask": DLR_MASK, "dlr-url": dlr_url}, quote_via=quote)  # fmt: skip
                writer.write(f"GET /cgi-bin/sendsms?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if not head.startswith((b"HTTP/1.1 202", b"HTTP/1.0 202", b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    raise RuntimeError(f"sendsms refused: {head.splitlines()[0]!r} {body[:200]!r}")
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_kannel(logs: Path, smsc_port: int, window: int, count: int, text: str, to: str,
                     extra_cpu: dict[str, Callable[[], float]], protocol: str = "smpp") -> dict:  # fmt: skip
    """Start Kannel's `protocol` driver for `window`, warm it up, send `count` messages; rates
    and CPU ms/msg.

    `extra_cpu` reads the CPU seconds of other processes (the broker, the simulator), reported
    for the same interval; `elapsed` is that interval in seconds."""
    logs.mkdir(parents=True, exist_ok=True)
    ports = {name: _free_port() for name in ("admin", "smsbox", "sendsms")}
    run = f"{DRIVERS[protocol]}-{window}"
    conf = logs / f"kannel-{run}.conf"
    conf.write_text(config(logs, smsc_port, window, ports, protocol))
    server = await asyncio.get_running_loop().create_server(DlrCounter, "127.0.0.1", 0)
    dlr_port = server.sockets[0].getsockname()[1]
    boxes = {"bearerbox": _start(["bearerbox", *QUIET, str(conf)], logs / f"kannel-bearerbox-{run}.out")}
    try:
        _wait_port(ports["smsbox"], 20, "bearerbox")
        boxes["smsbox"] = _start(["smsbox", *QUIET, str(conf)], logs / f"kannel-smsbox-{run}.out")
        _wait_port(ports["sendsms"], 20, "smsbox")
        DlrCounter.reset(200)
        await _sendsms(ports["sendsms"], dlr_port, range(1_000_000, 1_000_200), text, to)  # warm-up; waits for the bind
        await asyncio.wait_for(DlrCounter.done.wait(), 60)
        DlrCounter.reset(count)
        readers = {name: partial(cpu_seconds, proc.pid) for name, proc in boxes.items()} | extra_cpu
        before = {name: read() for name, read in readers.items()}
        started = time.perf_counter()
        await _sendsms(ports["sendsms"], dlr_port, range(count), text, to)
        await asyncio.wait_for(DlrCounter.done.wait(), 600)
        elapsed = time.perf_counter() - started
        cpu = {name: (read() - before[name]) * 1000 / count for name, read in readers.items()}
        cpu = {"bearerbox+smsbox": cpu.pop("bearerbox") + cpu.pop("smsbox"), **cpu}
        failed = len(DlrCounter.counts.get(2, ()))
        return {
            "submit_rate": count / (DlrCounter.last[8] - started),
            "receipt_rate": count / (DlrCounter.last[1] - started),
            "cpu": cpu,
            "failed": failed,
            "elapsed": elapsed,
        }
    finally:
        for proc in reversed(list(boxes.values())):
            _stop(proc)
        server.close()
