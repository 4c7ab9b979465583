"""TLS to the SMSC, the reconnect backoff, and one status per message and state (issue 13
items 2, 5 and 6), with the SMPP connector against the simulator over TCP."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import time
import uuid

import pytest

from services.protocols.smpp import normalise_message_id
from services.smpp_connector.testkit import channels_yaml, running_connector
from services.smsc.connector import Report
from tests.helpers import Tap
from tests.tls_certs import make_certs

from .copies import ROOT, wait_until

FAST = {"receipt_lookup_delays_s": (0.1, 0.2, 0.4), "throttle_first_s": 0.1}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("smsc-tls"))


def sni_recording_context(certs) -> tuple[ssl.SSLContext, list[str | None]]:
    names: list[str | None] = []
    context = certs.server_context()
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    return context, names


async def test_tls_bind_with_a_test_ca_sends_and_correlates(amqp, publisher, settings, certs):
    context, names = sni_recording_context(certs)
    connection = {"host": "localhost", "tls": True, "tls_ca": str(certs.ca)}
    async with running_connector(sim={"ssl": context}, connection=connection, **FAST) as r:
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{r.channel}")
        await r.send(publisher, "over TLS")
        await status.wait(1, where=lambda m: m.body["status"] == "wired")
        (delivered,) = await status.wait(1, where=lambda m: m.body["status"] == "delivered")
        assert delivered.body["id"] == 1
        assert names and set(names) == {"localhost"}  # SNI carries the connection's host


async def test_a_wrong_ca_is_refused_with_a_clear_error_and_nothing_is_sent(amqp, publisher, settings, certs):
    connection = {"tls": True, "tls_ca": str(certs.other_ca)}
    async with running_connector(sim={"ssl": certs.server_context()}, connection=connection, bind_timeout=None, **FAST) as r:
        logs = await Tap.open(amqp, settings, "sms.logs", f"log.{r.channel}.#")
        found = await logs.wait(1, where=lambda m: any("certificate verify failed" in e for e in m.body.get("errors", [])),
                                timeout=10)  # fmt: skip
        assert "TLS: certificate verify failed: unable to get local issuer certificate" in found[0].body["errors"]
        assert not r.connector.link.bound
        assert r.sim.stats()["binds"] == 0


async def test_tls_verify_false_binds_to_an_unknown_ca(amqp, publisher, settings, certs):
    connection = {"tls": True, "tls_ca": str(certs.other_ca), "tls_verify": False}
    async with running_connector(sim={"ssl": certs.server_context()}, connection=connection, **FAST) as r:
        assert r.connector.link.bound


def test_an_unreadable_tls_ca_stops_the_connector_with_one_line(tmp_path):
    name = f"tls{uuid.uuid4().hex[:6]}"
    path = tmp_path / "channels.yaml"
    path.write_text(channels_yaml(name, 2775, [{"uuid": str(uuid.uuid4())}], tls=True, tls_ca="/nonexistent/ca.pem"))
    done = subprocess.run([sys.executable, "-m", "services.cli", "run", "smpp", "--connection", name], cwd=ROOT,
                          env={**os.environ, "SWITCHBOARD_CHANNELS": str(path)}, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert f"connection '{name}': tls_ca /nonexistent/ca.pem: no such file" in done.stderr


async def test_reconnect_backoff_grows_while_logins_drop_at_once_and_resets_after_one_held(amqp, publisher, settings):
    connection = {"reconnect_s": [0.2, 1.0, 2.0]}
    async with running_connector(connection=connection, **FAST) as r:
        r.connector.link.held_s = 1.5
        gaps = []
        for _ in range(3):  # logins that drop at once: 0.2 s, then 1 s, then 2 s (+-20 %)
            binds = r.sim.stats()["binds"]
            await r.sim.unbind()
            dropped = time.monotonic()
            assert await wait_until(lambda binds=binds: r.sim.stats()["binds"] > binds, 10)
            gaps.append(time.monotonic() - dropped)
        await asyncio.sleep(2.0)  # this login holds longer than held_s
        binds = r.sim.stats()["binds"]
        await r.sim.unbind()
        dropped = time.monotonic()
        assert await wait_until(lambda: r.sim.stats()["binds"] > binds, 10)
        after_held = time.monotonic() - dropped
        print(f"reconnect waits {[round(g, 2) for g in gaps]}, after a held login {after_held:.2f} s")
        assert gaps[0] < 0.6 and gaps[1] >= 0.75 and gaps[2] >= 1.5
        assert after_held < 0.6


async def test_a_receipt_sent_again_publishes_no_second_status(amqp, publisher, settings):
    """The SMSC sends a receipt again when the link fell between our publish and our answer."""
    async with running_connector(**FAST) as r:
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{r.channel}")
        await r.send(publisher, "once")
        (wired,) = await status.wait(1, where=lambda m: m.body["status"] == "wired")
        await status.wait(1, where=lambda m: m.body["status"] == "delivered")
        external_id = wired.body["external_id"]
        again = Report([normalise_message_id(external_id)], external_id, "delivered", None, "receipt stat DELIVRD", {})
        assert (await r.connector.on_report(again)).value == "ok"
        await asyncio.sleep(1.0)
        assert len([m for m in status.messages if m.body["status"] == "delivered"]) == 1
