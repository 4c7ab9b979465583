"""Kannel 1.4.5 (Debian ``kannel``) as a real peer: bearerbox + smsbox with one ``emi`` or
``cimd2`` SMSC connection pointed at a host:port, and an HTTP sink for its callbacks.

The config follows ``shared/SMSC_PROTOCOLS.md`` §3.3; every port is free and every file lives
in a temporary folder. :func:`require_kannel` skips, naming the package, when the binaries
are absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"


def require_kannel() -> None:
    for binary in (BEARERBOX, SMSBOX):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (Debian package kannel); the Kannel peer test cannot run")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpSink:
    """Records every GET Kannel makes (dlr-url, get-url) and answers 200 with an empty body."""

    def __init__(self):
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._changed = asyncio.Event()

    async def start(self) -> HttpSink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            target = head.split(b" ", 2)[1].decode("latin-1")
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True, encoding="utf-8",
                                                  errors="replace").items()}
            self.requests.append((url.path, query))
            self._changed.set()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    async def wait(self, predicate, timeout: float = 15.0) -> list[dict[str, str]]:
        """Wait until ``predicate(requests)`` holds; returns the requests."""
        deadline = time.monotonic() + timeout
        while not predicate(self.requests):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"Kannel did not call as expected within {timeout} s: {self.requests}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.requests

    def of(self, path: str, **match: str) -> list[dict[str, str]]:
        return [q for p, q in self.requests if p == path and all(q.get(k) == v for k, v in match.items())]


@dataclass
class Kannel:
    """bearerbox + smsbox for one SMSC connection (``driver`` emi or cimd2)."""

    driver: str
    smsc_port: int
    username: str
    password: str
    sink_port: int
    workdir: Path
    admin_port: int = field(default_factory=free_port)
    smsbox_port: int = field(default_factory=free_port)
    sendsms_port: int = field(default_factory=free_port)
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def smsc_id(self) -> str:
        return f"{self.driver}1"

    def config(self) -> str:
        w = self.workdir
        extra = "wait-ack = 60\nwindow = 10\n" if self.driver == "emi" else ""
        return f"""group = core
admin-port = {self.admin_port}
admin-password = admin
status-password = admin
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.smsbox_port}
box-allow-ip = "127.0.0.1"
dlr-storage = internal
log-file = "{w}/bearerbox.log"
log-level = 0
access-log = "{w}/access.log"

group = smsc
smsc = {self.driver}
smsc-id = {self.smsc_id}
host = 127.0.0.1
port = {self.smsc_port}
smsc-username = "{self.username}"
smsc-password = "{self.password}"
keepalive = 30
reconnect-delay = 1
{extra}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{w}/smsbox.log"
log-level = 0
mo-recode = true

group = sendsms-user
username = tester
password = foobar
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:{self.sink_port}/mo?from=%p&to=%P&text=%a&coding=%c&udh=%u&smsc=%i"
"""

    async def start(self, timeout: float = 20.0) -> Kannel:
        """bearerbox first; smsbox once bearerbox answers (smsbox gives up at once otherwise)."""
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config())
        await self._spawn(BEARERBOX, conf)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.status()
                break
            if time.monotonic() > deadline or self.procs[0].returncode is not None:
                raise AssertionError(f"bearerbox did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        await self._spawn(SMSBOX, conf)
        await self.wait_online(max(1.0, deadline - time.monotonic()))
        return self

    async def _spawn(self, binary: str, conf: Path) -> None:
        self.procs.append(await asyncio.create_subprocess_exec(
            binary, "-v", "4", str(conf), cwd=self.workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))

    async def status(self) -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"http://127.0.0.1:{self.admin_port}/status.txt", params={"password": "admin"})
            return r.text

    async def wait_online(self, timeout: float = 20.0) -> None:
        """Until the SMSC connection is online and smsbox answers sendsms."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = await self.status()
                line = next((x for x in last.splitlines() if self.smsc_id in x and "online" in x), None)
                if line and "smsbox" in last.split("Box connections")[-1]:
                    with contextlib.suppress(httpx.HTTPError):
                        async with httpx.AsyncClient(timeout=5) as http:
                            r = await http.get(f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms")
                            if r.status_code in (400, 401, 403, 202):
                                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"Kannel {self.driver} did not come online in {timeout} s:\n{last}\n"
                             f"{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("bearerbox.log", "smsbox.log"):
            path = self.workdir / name
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    async def sendsms(self, **params: str) -> httpx.Response:
        query = {"username": "tester", "password": "foobar", "charset": "UTF-8", **params}
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.get(f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?" + urlencode(query))

    async def stop(self) -> None:
        """SIGTERM smsbox, then bearerbox; whatever is still running after 3 s is killed."""
        for proc in reversed(self.procs):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


TEST_CIMD2 = "/usr/lib/kannel/test/test_cimd2"


def require_test_cimd2() -> None:
    if shutil.which(TEST_CIMD2) is None:
        pytest.skip(f"{TEST_CIMD2} is not installed (Debian package kannel-extras); the CIMD2 server peer cannot run")


async def start_test_cimd2(user: str = "foo", password: str = "bar") -> tuple[asyncio.subprocess.Process, int]:
    """Kannel's fake CIMD2 SMSC (``--activity 1``: valid replies, nothing unsolicited) on a free
    port, once it accepts connections. It serves one client and exits when that client leaves,
    so start one per connection. Returns ``(process, port)``."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        TEST_CIMD2, "--port", str(port), "--user", user, "--password", password, "--activity", "1",
        "--logging", "0", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _listening(port):  # a probing connect would be its one client
        if time.monotonic() > deadline or proc.returncode is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise AssertionError("test_cimd2 did not listen within 10 s")
        await asyncio.sleep(0.05)
    return proc, port


def _listening(port: int) -> bool:
    """Whether something listens on ``port`` (from /proc/net/tcp*, without connecting)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False
