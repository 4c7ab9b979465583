"""The UCP and CIMD2 connectors against the bundled simulator over TCP on 127.0.0.1, with the
real broker and Redis: one table of guarantees (CONTRACT section 11), run for each protocol.

Every test watches what the connector published (Taps validate each body against schemas/)
and what arrived at the simulator. The SMPP connector has the same cases in
services/smpp_connector/connector_test.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.cimd2_connector import testkit as cimd2_kit
from services.smsc import testkit
from services.smsc.session import Session
from services.smsc_simulator import Cimd2Simulator, UcpSimulator
from services.ucp_connector import testkit as ucp_kit
from tests import wirecheck
from tests.helpers import FailingPublisher, Tap, of, queue_depth, taps

ROOT = Path(__file__).resolve().parents[1]
GSM_500 = ("Curly {braces}, [brackets], tildes ~ and euros € cost two septets each. " * 8)[:500]
UCS2_LONG = "Olá 👋🏽 — emoji cross part boundaries: " + "😀🎉🚀" * 40 + " fin ✓"
FAST = {"receipt_lookup_delays_s": (0.1, 0.2, 0.4), "throttle_first_s": 0.1}


@dataclass(frozen=True)
class Kit:
    """What differs between the protocols in these tests."""

    protocol: str
    running_connector: Any
    simulator: type
    refusal: Any  # an error code the simulator answers a submit with ...
    refusal_code: str  # ... and the StatusUpdate code it becomes
    undeliv_code: str  # the code of a failed receipt (simulator stat UNDELIV)
    try_later: Any  # the answer to a delivery the broker could not take
    bad_sender: Any  # the answer to an MO whose sender is no number


KITS = [
    Kit("ucp", ucp_kit.running_connector, UcpSimulator, "06", "ucp_06", "dlr_000", "04", "02"),
    Kit("cimd2", cimd2_kit.running_connector, Cimd2Simulator, 300, "cimd2_300", "dlr_3", 10, 306),
]


@pytest.fixture(params=KITS, ids=[k.protocol for k in KITS])
def kit(request) -> Kit:
    return request.param


def count(tap: Tap, status: str) -> int:
    return len([m for m in tap.messages if m.body["status"] == status])


# ---------------------------------------------------------------------------- logging in


async def test_wrong_password_retries_with_backoff_and_consumes_nothing(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"accounts": {"switch": "other-pw"}}, bind_timeout=None, **FAST) as r:
        (logs,) = await taps(amqp, settings, "sms.logs")
        await r.send(publisher, "must wait in the queue")
        assert await r.sim.wait_for(lambda: r.sim.stats()["bind_failures"] >= 3, 5)
        assert r.connector.consumer is None and not r.connector.link.bound
        assert await queue_depth(amqp, settings, f"transport.{r.routing_key}") == 1
        entry = (await logs.wait(1, where=lambda m: m.body["channel_uuid"] == r.channel))[0]
        assert entry.body["type"] == kit.protocol and entry.body["frames"][0]["event"] == "bind_failed"
        assert "login refused" in entry.body["errors"][0] and entry.body["frames"][0]["username"] == "switch"
        assert "s3cr3tpw" not in entry.raw.decode()
        assert r.sim.stats()["submits"] == 0


async def test_keepalive_goes_out_when_idle(kit, amqp, publisher, settings):
    async with kit.running_connector(connection={"keepalive_s": 0.3}, **FAST) as r:
        assert await r.sim.wait_for(lambda: r.sim.stats()["enquire_links"] >= 2, 5)
        assert r.connector.link.bound and r.sim.stats()["binds"] == 1


# ---------------------------------------------------------------------------- sending


@pytest.mark.parametrize("text", ["Hello @ € [x] {y} ~ \\ ^ |", GSM_500, UCS2_LONG], ids=["gsm", "gsm-multipart", "ucs2-multipart"])
async def test_text_arrives_whole_and_its_receipts_become_one_delivered(kit, amqp, publisher, settings, text):
    async with kit.running_connector(**FAST) as r:
        status, logs = await taps(amqp, settings, "sms.status", "sms.logs")
        request = await r.send(publisher, text, to="tel:+250788123123")
        wired = (await status.wait(1, where=of("wired", r.channel)))[0].body
        assert await r.sim.wait_for(lambda: len(r.sim.messages) == 1, 3)
        received = r.sim.messages[0]
        assert received["text"] == text
        assert received["destination"] == "250788123123" and received["source"] == "250700000001"
        assert received["parts"] == (1 if len(text) < 100 else 4 if text == GSM_500 else received["parts"])
        assert wired["external_id"] == received["message_ids"][0] and wired["id"] == request.id
        assert wired["transport"] == r.routing_key and wired["attempt"] == 1
        delivered = (await status.wait(1, where=of("delivered", r.channel)))[0].body
        assert delivered["external_id"] == wired["external_id"] and delivered["uuid"] == request.uuid
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == received["parts"], 3)
        await asyncio.sleep(0.2)
        assert count(status, "delivered") == 1
        send_log = (await logs.wait(1, where=lambda m: m.body.get("msg_id") == request.id and m.body["type"] == kit.protocol))[0]
        assert len(send_log.body["frames"]) == received["parts"]


async def test_failed_receipt_of_a_multipart_message_is_reported_once(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"faults": {"receipt_rules": {"+25072": "UNDELIV"}}}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        ok = await r.send(publisher, "fine", to="+250788000001")
        bad = await r.send(publisher, GSM_500, to="+250720000009")
        failed = (await status.wait(1, where=of("failed")))[0].body
        delivered = (await status.wait(1, where=of("delivered")))[0].body
        assert (failed["id"], failed["error"]["code"], delivered["id"]) == (bad.id, kit.undeliv_code, ok.id)
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 5, 3)
        await asyncio.sleep(0.2)
        assert count(status, "failed") == 1


async def test_alphanumeric_sender(kit, amqp, publisher, settings):
    async with kit.running_connector(addresses=("Switchboard",), **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        await r.send(publisher, "from a name")
        await status.wait(1, where=of("wired"))
        assert r.sim.messages[0]["source"] == "Switchboard"


async def test_refusal_fails_with_the_protocols_code(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"faults": {"error_by_prefix": {"+999": kit.refusal}}}, **FAST) as r:
        status, logs = await taps(amqp, settings, "sms.status", "sms.logs")
        request = await r.send(publisher, "nowhere", to="+99912345")
        failed = (await status.wait(1, where=of("failed")))[0].body
        assert failed["id"] == request.id and failed["error"]["code"] == kit.refusal_code
        entry = (await logs.wait(1, where=lambda m: m.body.get("msg_id") == request.id))[0].body
        assert entry["errors"] and entry["frames"][0]["destination"] == "99912345"
        assert await queue_depth(amqp, settings, f"transport.{r.routing_key}") == 0


async def test_requests_that_cannot_be_sent_fail_with_a_reason(kit, amqp, publisher, settings):
    async with kit.running_connector(**FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        urn = await r.send(publisher, "hi", to="ext:someone")
        expired = await r.send(publisher, "late", expires_on="2000-01-01T00:00:00Z")
        huge = await r.send(publisher, "x" * 160 * 300)
        failed = {m.body["id"]: m.body["error"]["code"] for m in await status.wait(3, where=of("failed"))}
        assert failed == {urn.id: "invalid_request", expired.id: "expired", huge.id: "invalid_request"}
        assert r.sim.stats()["submits"] == 0


async def test_throttling_pauses_the_link_and_recovers(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"faults": {"tps_limit": 3}}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        for i in range(20):
            await r.send(publisher, f"burst {i}")
        wired = await status.wait(20, where=of("wired"), timeout=20)
        assert sorted(m.body["id"] for m in wired) == list(range(1, 21))
        assert sum(n for s, n in r.sim.stats()["submit_resp"].items() if s not in ("ACK", "OK")) > 0
        assert not [m for m in status.messages if m.body["status"] in ("failed", "errored")]
        assert r.sim.stats()["messages"] == 20


async def test_window_limits_what_is_outstanding(kit, amqp, publisher, settings):
    window = 4 if kit.protocol == "ucp" else 1  # CIMD2: stop-and-wait unless the SMSC grants more
    connection = {"submit_timeout_s": 30, **({"window": window} if kit.protocol == "ucp" else {"window": 4})}
    async with kit.running_connector(sim={"faults": {"no_response": -1}}, connection=connection, **FAST) as r:
        for i in range(12):
            await r.send(publisher, f"windowed {i}")
        assert await r.sim.wait_for(lambda: r.sim.stats()["submits"] >= window, 3)
        await asyncio.sleep(0.3)
        assert r.sim.stats()["submits"] == window
        assert r.connector.link.tx.in_flight == window
        r.sim.set_faults(no_response=0)


async def test_unanswered_submit_reconnects_and_redelivers(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"faults": {"no_response": 1}}, connection={"submit_timeout_s": 0.3}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        request = await r.send(publisher, "answer me")
        wired = (await status.wait(1, where=of("wired"), timeout=5))[0].body
        assert wired["id"] == request.id
        assert r.sim.stats()["binds"] == 2 and r.sim.stats()["submits"] == 2


async def test_connection_dropped_mid_stream_loses_nothing(kit, amqp, publisher, settings):
    async with kit.running_connector(sim={"faults": {"drop_after": 7}}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        for i in range(40):
            await r.send(publisher, f"stream {i}")
        wired = await status.wait(40, where=of("wired"), timeout=20)
        assert {m.body["id"] for m in wired} == set(range(1, 41))
        assert r.sim.stats()["drops"] == 1 and r.sim.stats()["binds"] >= 2
        assert {m["text"] for m in r.sim.messages} >= {f"stream {i}" for i in range(40)}
        assert not [m for m in status.messages if m.body["status"] in ("failed", "errored")]


async def test_every_frame_sent_passes_an_independent_decoder(kit, amqp, publisher, settings, monkeypatch):
    wirecheck.require(*(["decode_emimsg"] if kit.protocol == "ucp" else ["tshark", "text2pcap"]))
    sent: list[bytes] = []
    write = Session.write
    monkeypatch.setattr(Session, "write", lambda self, data: (sent.append(data), write(self, data))[1])
    async with kit.running_connector(connection={"keepalive_s": 0.5}, addresses=("Switchboard",), **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        for text in ("plain", GSM_500, UCS2_LONG):
            await r.send(publisher, text)
        await status.wait(3, where=of("delivered"), timeout=10)
        await r.sim.inject_mo("+250788555001", "250700000001", "hello back")
        assert await r.sim.wait_for(lambda: r.sim.stats()["enquire_links"] >= 1, 5)
    kinds = {data[1:3] for data in sent}
    assert len(sent) >= 12 and len(kinds) >= 3, kinds  # login, submits, keep-alive and answers
    problems = wirecheck.emi_problems(sent) if kit.protocol == "ucp" else wirecheck.cimd_problems(sent)
    assert problems == []


# ---------------------------------------------------------------------------- receiving


@pytest.mark.parametrize("text", [GSM_500, UCS2_LONG], ids=["gsm", "ucs2"])
async def test_incoming_multipart_messages_are_reassembled(kit, amqp, publisher, settings, text):
    async with kit.running_connector(addresses=("+250700000001", "+250700000002"), **FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        answers = await r.sim.inject_mo("+250788555001", "250700000002", text)
        assert len(answers) > 2 and set(answers) == {0}
        message = (await inbound.wait(1, where=lambda m: m.body["channel_uuid"] == r.channels[1]))[0]
        assert message.body["text"] == text
        assert (message.body["urn"], message.body["from"]) == ("tel:+250788555001", "+250788555001")
        assert message.body["transport"] == r.routing_key
        keys = [k async for k in r.runtime.redis.scan_iter(match=f"{settings.prefix}{kit.protocol}:{r.name}:mo:*")]
        assert keys == []


async def test_incoming_single_message_goes_to_the_first_channel_when_no_address_matches(kit, amqp, publisher, settings):
    async with kit.running_connector(addresses=("+250700000001", "+250700000002"), **FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("00250788555002", "12345", "STOP @ ü") == [0]
        message = (await inbound.wait(1))[0].body
        assert message["channel_uuid"] == r.channels[0] and message["text"] == "STOP @ ü"
        assert message["urn"] == "tel:+250788555002"


async def test_incoming_from_an_impossible_sender_is_refused(kit, amqp, publisher, settings):
    async with kit.running_connector(**FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("12", "250700000001", "who am I") == [kit.bad_sender]
        await asyncio.sleep(0.2)
        assert inbound.messages == []


async def test_incoming_is_refused_while_the_broker_is_gone_and_taken_when_delivered_again(kit, amqp, publisher, settings):
    async with kit.running_connector(publisher=FailingPublisher(), **FAST) as r:
        assert await r.sim.inject_mo("+250788555003", "250700000001", "lost?") == [kit.try_later]
        # the part that completes the message (whichever is handled last) is the one refused
        answers = await r.sim.inject_mo("+250788555003", "250700000001", GSM_500, ref=76)
        assert sorted(answers, key=str) == sorted([0, 0, 0, kit.try_later], key=str)
        r.connector.publisher = r.runtime.publisher  # the broker is back: the SMSC's redelivery goes through
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("+250788555003", "250700000001", "lost?") == [0]
        assert await r.sim.inject_mo("+250788555003", "250700000001", GSM_500, ref=77) == [0, 0, 0, 0]
        texts = sorted(m.body["text"] for m in await inbound.wait(2))
        assert texts == sorted(["lost?", GSM_500])


async def test_receipt_is_refused_while_the_broker_is_gone_and_taken_when_delivered_again(kit, amqp, publisher, settings):
    async with kit.running_connector(publisher=FailingPublisher(), sim={"receipt_retry_delay": 0.3}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        await r.send(publisher, "receipt later")
        await status.wait(1, where=of("wired"))
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_failed"] >= 1, 3)
        r.connector.publisher = r.runtime.publisher
        await status.wait(1, where=of("delivered"), timeout=5)
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 1, 3)


# ---------------------------------------------------------------------------- the process


async def test_sigterm_logs_out_and_exits_zero(kit, amqp, publisher, settings, tmp_path):
    sim = await kit.simulator(accounts={"switch": "s3cr3tpw"}).start()
    name, channel = f"proc{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(testkit.channels_yaml(kit.protocol, name, sim.port, [{"uuid": channel, "address": "+250700000001"}],
                                          username="switch", password="s3cr3tpw"))  # fmt: skip
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", f"services.{kit.protocol}_connector", "--connection", name], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert await sim.wait_for(lambda: sim.stats()["binds"] == 1, 15), "the connector did not log in"
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{channel}")
        from services.core.models import SendRequest

        request = SendRequest(id=1, channel_uuid=channel, to="+250788123123", text="before the signal")
        await publisher.publish("sms.transport", f"{kit.protocol}.{name}", request.to_bytes())
        await status.wait(1, timeout=10)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        assert code == 0, proc.stdout.read().decode()
        if kit.protocol == "cimd2":
            assert sim.stats()["unbinds"] == 1  # CIMD2 has a logout (02); UCP just closes
    finally:
        if proc.poll() is None:
            proc.kill()
        await sim.stop()


def test_unknown_connection_exits_2(kit, tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(testkit.channels_yaml(kit.protocol, "known", 5000, [{"uuid": str(uuid.uuid4())}]))
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path)}
    done = subprocess.run([sys.executable, "-m", f"services.{kit.protocol}_connector", "--connection", "nope"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and f"no {kit.protocol.upper()} connection 'nope' (known: known)" in done.stderr
