"""The CIMD2 connector against an SMSC we did not write: Kannel's `test_cimd2` server (Debian
`kannel-extras`), with the real broker and Redis.

`test_cimd2` answers login (900:100 for a wrong password), submit (53 with 021 and 060;
900:300 without a destination, 900:301 with two), alive (90) and logout, and exits when its
one client disconnects, so each test starts its own. It never sends status reports or (at
activity 1) messages: those are covered against our simulator in tests/test_smsc_links.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import uuid

import pytest

from services.protocols import cimd2
from services.smsc import testkit
from tests.helpers import Tap
from tests.tools.procs import free_port

from .connector import Cimd2Connector

SERVER = "/usr/lib/kannel/test/test_cimd2"
USER, PASSWORD = "foo", "bar"

pytestmark = pytest.mark.skipif(
    not os.access(SERVER, os.X_OK) or shutil.which("stdbuf") is None,
    reason=f"Kannel's test_cimd2 is not installed ({SERVER}, Debian package kannel-extras)",
)


class KannelServer:
    """`test_cimd2` as a process on a free port; its log lines (line-buffered) in `lines`."""

    def __init__(self):
        self.port = free_port()
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> KannelServer:
        self.proc = await asyncio.create_subprocess_exec(
            "stdbuf", "-oL", SERVER, "--port", str(self.port), "--user", USER, "--password", PASSWORD,
            "--activity", "1", "--logging", "2",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode("latin-1").rstrip())

    def said(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=2)


def kannel(password: str = PASSWORD, **connection):
    """The connector logged in to a fresh test_cimd2 (the connector retries until it listens)."""
    server = KannelServer()
    name, channel = f"kannel{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    text = testkit.channels_yaml("cimd2", name, server.port, [{"uuid": channel, "address": "1234"}],
                                 username=USER, password=password, **connection)  # fmt: skip
    return server, channel, testkit.running(Cimd2Connector, server, text, name, [channel],
                                            bind_timeout=10 if password == PASSWORD else None)  # fmt: skip


async def test_login_submit_and_alive(amqp, publisher, settings):
    server, _, running = kannel(keepalive_s=0.4)
    await server.start()
    async with running as r:
        assert server.said("RCV: Login user 'foo', password 'bar'") == 1 and server.said("SND: Login OK") == 1
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{r.channel}")
        request = await r.send(publisher, "Hello from Switchboard @ 5 €", to="+250788123123")
        wired = (await status.wait(1, timeout=10))[0].body
        assert (wired["status"], wired["id"], wired["transport"]) == ("wired", request.id, r.routing_key)
        assert re.fullmatch(r"250788123123:\d{12}", wired["external_id"]), wired
        assert server.said("RCV: Submit to 250788123123") == 1 and server.said("SND: Submit OK") == 1
        assert server.said("From: 1234") == 1
        assert await server.wait_for(lambda: server.said("SND: Alive.") >= 2, 5), server.lines[-10:]
        assert r.connector.link.bound and r.connector.link.tx.is_open


async def test_errors_300_and_301_fail_the_message_and_keep_the_link(amqp, publisher, settings):
    server, _, running = kannel()
    await server.start()
    async with running as r:
        session = r.connector.link.tx
        for params, code in ((((cimd2.P_TEXT, "no destination"),), "cimd2_300"),
                             (((cimd2.P_DESTINATION, "123"), (cimd2.P_DESTINATION, "456"), (cimd2.P_TEXT, "two")), "cimd2_301")):  # fmt: skip
            number = session.next_number()
            answer = await session.request(number, cimd2.encode_packet(cimd2.Packet(cimd2.OP_SUBMIT, number, params)), 5)
            outcome = r.connector.outcome(("123", "1234", [], 0), answer, 0.0)
            assert (outcome.message_id, outcome.code, outcome.throttled) == (None, code, False)
            assert outcome.summary["result"] == f"900:{code.removeprefix('cimd2_')}"
        assert server.said("SND: ERROR, no destination") == 1 and server.said("SND: ERROR, too many destinations") == 1
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{r.channel}")
        await r.send(publisher, "still logged in")
        assert (await status.wait(1, timeout=10))[0].body["status"] == "wired"


async def test_wrong_password_is_refused_with_100(amqp, publisher, settings):
    server, channel, running = kannel(password="wrong")
    logs = await Tap.open(amqp, settings, "sms.logs", f"log.{channel}")
    await server.start()
    async with running as r:
        assert await server.wait_for(lambda: server.said("RCV: Login user 'foo', password 'wrong'") == 1, 10)
        entry = (await logs.wait(1, timeout=10))[0].body
        assert entry["frames"][0]["event"] == "bind_failed" and "login refused: cimd2_100" in entry["errors"][0]
        assert not r.connector.link.bound and r.connector.consumer is None
        assert "wrong" not in str(entry)
