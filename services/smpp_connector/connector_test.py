"""The SMPP connector against the real broker and the SMSC simulator over TCP on 127.0.0.1.

Every test watches what the connector published (Taps validate each body against schemas/)
and what arrived at the simulator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.core.broker import Delivery
from services.core.models import SendRequest
from tests.helpers import FailingPublisher, Tap, of, queue_depth, taps

from .testkit import PASSWORD, channels_yaml, running_connector

ROOT = Path(__file__).resolve().parents[2]
GSM_500 = ("Curly {braces}, [brackets], tildes ~ and euros € cost two septets each. " * 8)[:500]
UCS2_LONG = "Olá 👋🏽 — emoji cross part boundaries: " + "😀🎉🚀" * 40 + " fin ✓"
FAST = {"receipt_lookup_delays_s": (0.1, 0.2, 0.4), "throttle_first_s": 0.1}


# ---------------------------------------------------------------------------- binding


async def test_wrong_password_retries_with_backoff_and_consumes_nothing(amqp, publisher, settings):
    async with running_connector(sim={"accounts": {"switch": "other-pw"}}, bind_timeout=None, **FAST) as r:
        (logs,) = await taps(amqp, settings, "sms.logs")
        await r.send(publisher, "must wait in the queue")
        assert await r.sim.wait_for(lambda: r.sim.stats()["bind_failures"] >= 3, 5)
        assert r.connector.consumer is None and not r.connector.link.bound
        assert await queue_depth(amqp, settings, f"transport.{r.routing_key}") == 1
        failures = await logs.wait(1, where=lambda m: m.body["channel_uuid"] == r.channel)
        entry = failures[0].body
        assert entry["type"] == "smpp" and "ESME_RINVPASWD" in entry["errors"][0]
        assert entry["smpp"][0]["event"] == "bind_failed" and entry["smpp"][0]["system_id"] == "switch"
        assert PASSWORD not in failures[0].raw.decode()
        assert r.sim.stats()["submits"] == 0


# ---------------------------------------------------------------------------- sending


@pytest.mark.parametrize("mode", ["udh", "sar", "payload"])
async def test_long_gsm_message_with_extension_characters_arrives_whole(amqp, publisher, settings, mode):
    async with running_connector(connection={"long_messages": mode}, **FAST) as r:
        status, logs = await taps(amqp, settings, "sms.status", "sms.logs")
        request = await r.send(publisher, GSM_500, to="tel:+250788123123")
        wired = (await status.wait(1, where=of("wired", r.channel)))[0].body
        assert await r.sim.wait_for(lambda: len(r.sim.messages) == 1, 3)
        received = r.sim.messages[0]
        assert received["text"] == GSM_500 and received["data_coding"] == 0
        assert received["destination"] == "250788123123" and received["source"] == "250700000001"
        assert received["parts"] == (1 if mode == "payload" else 4)
        assert wired["external_id"] == received["message_ids"][0] and wired["id"] == request.id
        assert wired["transport"] == r.routing_key and wired["attempt"] == 1
        delivered = await status.wait(1, where=of("delivered", r.channel))
        assert delivered[0].body["external_id"] == wired["external_id"] and delivered[0].body["uuid"] == request.uuid
        await asyncio.sleep(0.3)  # every part's receipt is in: still one delivered
        assert len([m for m in status.messages if m.body["status"] == "delivered"]) == 1
        send_log = (await logs.wait(1, where=lambda m: m.body.get("msg_id") == request.id and m.body["smpp"][0]["pdu"] == "submit_sm"))[0]
        assert len(send_log.body["smpp"]) == received["parts"]


async def test_long_ucs2_message_with_emoji_arrives_whole(amqp, publisher, settings):
    async with running_connector(connection={"long_messages": "udh"}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        await r.send(publisher, UCS2_LONG)
        await status.wait(1, where=of("delivered", r.channel))
        received = r.sim.messages[0]
        assert received["text"] == UCS2_LONG and received["data_coding"] == 8 and received["parts"] > 2
        units = [len(s["short_message"]) - 6 for s in r.sim.submits]
        assert max(units) <= 134  # 67 UTF-16 units per part


async def test_latin1_default_and_fixed_source_ton(amqp, publisher, settings):
    connection = {"default_coding": "latin1", "source_ton": 5, "source_npi": 0, "dest_ton": 1, "dest_npi": 1}
    async with running_connector(connection=connection, addresses=("Switchbrd",), **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        await r.send(publisher, "Ça coûte 5 €? Non: ça coûte ¥")
        await status.wait(1, where=of("wired", r.channel))
        submit = r.sim.submits[0]
        assert submit["data_coding"] == 0x08  # ¥ is GSM, € is not Latin-1: neither fits, so UCS2
        assert (submit["source"], submit["source_ton"], submit["source_npi"]) == ("Switchbrd", 5, 0)
        await r.send(publisher, "Ça coûte cinq")
        await status.wait(2, where=of("wired", r.channel))
        assert r.sim.submits[1]["data_coding"] == 0x03


@pytest.mark.parametrize(
    ("dlr_id_format", "sim_ids"),
    [("hex", {"id_format": "hex", "dlr_id_format": "dec"}), ("dec", {"id_format": "dec", "dlr_id_format": "hex"}),
     ("same", {"id_format": "hex", "dlr_id_format": "same"}), ("auto", {"id_format": "hex", "dlr_id_format": "dec"})],
)  # fmt: skip
async def test_receipts_are_matched_in_every_id_format(amqp, publisher, settings, dlr_id_format, sim_ids):
    sim = {**sim_ids, "faults": {"receipt_rules": {"+25072": "UNDELIV", "+25073": "ENROUTE"}}}
    async with running_connector(sim=sim, connection={"dlr_id_format": dlr_id_format}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        ok = await r.send(publisher, "delivered", to="+250788000001")
        bad = await r.send(publisher, "undeliverable", to="+250720000002")
        enroute = await r.send(publisher, "en route", to="+250730000003")
        delivered = (await status.wait(1, where=of("delivered")))[0].body
        failed = (await status.wait(1, where=of("failed")))[0].body
        sent = (await status.wait(1, where=of("sent")))[0].body
        assert (delivered["id"], failed["id"], sent["id"]) == (ok.id, bad.id, enroute.id)
        assert failed["error"]["code"] == "dlr_UNDELIV"
        wired = {m.body["id"]: m.body["external_id"] for m in await status.wait(3, where=of("wired"))}
        assert delivered["external_id"] == wired[ok.id] and failed["external_id"] == wired[bad.id]
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 3, 3)


async def test_receipt_that_arrives_before_its_mapping_is_looked_up_again(amqp, publisher, settings):
    async with running_connector(sim={"receipt_delay": 0}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        record = r.connector.store.record_submits

        async def slow_record(*args, **kwargs):
            await asyncio.sleep(0.25)  # the receipt (no delay at the SMSC) overtakes this write
            await record(*args, **kwargs)

        r.connector.store.record_submits = slow_record
        request = await r.send(publisher, "fast receipt")
        delivered = (await status.wait(1, where=of("delivered"), timeout=5))[0].body
        assert delivered["id"] == request.id
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 1, 3)
        assert r.sim.stats()["receipts_failed"] == 0


async def test_multipart_failure_is_reported_once(amqp, publisher, settings):
    sim = {"faults": {"receipt_rules": {"+25072": "UNDELIV"}}}
    async with running_connector(sim=sim, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        request = await r.send(publisher, GSM_500, to="+250720000009")
        failed = await status.wait(1, where=of("failed"))
        await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 4, 3)
        await asyncio.sleep(0.2)
        assert len([m for m in status.messages if m.body["status"] == "failed"]) == 1
        assert failed[0].body["id"] == request.id and failed[0].body["error"]["code"] == "dlr_UNDELIV"


async def test_error_status_by_destination_fails_with_its_esme_name(amqp, publisher, settings):
    sim = {"faults": {"error_by_prefix": {"+999": "ESME_RINVDSTADR"}}}
    async with running_connector(sim=sim, **FAST) as r:
        status, logs = await taps(amqp, settings, "sms.status", "sms.logs")
        request = await r.send(publisher, "nowhere", to="+99912345")
        failed = (await status.wait(1, where=of("failed")))[0].body
        assert failed["id"] == request.id and failed["error"]["code"] == "smpp_ESME_RINVDSTADR"
        entry = (await logs.wait(1, where=lambda m: m.body.get("msg_id") == request.id))[0].body
        assert entry["smpp"][0]["status"] == "ESME_RINVDSTADR" and entry["errors"]
        assert await queue_depth(amqp, settings, f"transport.{r.routing_key}") == 0


async def test_system_error_is_retried_through_the_retry_queue(amqp, publisher, settings):
    sim = {"faults": {"error_by_prefix": {"+888": "ESME_RSYSERR"}}}
    async with running_connector(sim=sim, **FAST) as r:
        status, retry = await taps(amqp, settings, "sms.status", "sms.retry")
        request = await r.send(publisher, "try later", to="+88812345")
        errored = (await status.wait(1, where=of("errored")))[0].body
        assert errored["error"]["code"] == "smpp_ESME_RSYSERR"
        assert errored["error"]["retry_in_ms"] == settings.retry_delays_ms[0]
        again = (await retry.wait(1, where=lambda m: m.body["id"] == request.id))[0]
        assert again.routing_key == str(settings.retry_delays_ms[0]) and again.body["attempt"] == 1
        assert again.headers["CC"] == [r.routing_key]


async def test_throttling_pauses_the_bind_and_recovers(amqp, publisher, settings):
    async with running_connector(sim={"faults": {"tps_limit": 8}}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        for i in range(20):
            await r.send(publisher, f"burst {i}")
        wired = await status.wait(20, where=of("wired"), timeout=15)
        assert sorted(m.body["id"] for m in wired) == list(range(1, 21))
        assert r.sim.stats()["submit_resp"].get("ESME_RTHROTTLED", 0) > 0
        assert not [m for m in status.messages if m.body["status"] in ("failed", "errored")]
        assert r.sim.stats()["messages"] == 20


async def test_window_of_n_keeps_exactly_n_in_flight(amqp, publisher, settings):
    sim = {"faults": {"no_response": -1}}
    async with running_connector(sim=sim, connection={"window": 4, "submit_timeout_s": 30}, **FAST) as r:
        for i in range(12):
            await r.send(publisher, f"windowed {i}")
        assert await r.sim.wait_for(lambda: r.sim.stats()["submits"] >= 4, 3)
        await asyncio.sleep(0.3)
        assert r.sim.stats()["submits"] == 4
        assert r.connector.link.tx.in_flight == 4
        r.sim.set_faults(no_response=0)


async def test_unanswered_submit_reconnects_and_redelivers(amqp, publisher, settings):
    sim = {"faults": {"no_response": 1}}
    async with running_connector(sim=sim, connection={"submit_timeout_s": 0.3}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        request = await r.send(publisher, "answer me")
        wired = (await status.wait(1, where=of("wired"), timeout=5))[0].body
        assert wired["id"] == request.id
        assert r.sim.stats()["binds"] == 2 and r.sim.stats()["submits"] == 2


async def test_connection_dropped_mid_stream_loses_nothing(amqp, publisher, settings):
    async with running_connector(sim={"faults": {"drop_after": 7}}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        for i in range(40):
            await r.send(publisher, f"stream {i}")
        wired = await status.wait(40, where=of("wired"), timeout=15)
        assert {m.body["id"] for m in wired} == set(range(1, 41))
        assert r.sim.stats()["drops"] == 1 and r.sim.stats()["binds"] >= 2
        assert {m["text"] for m in r.sim.messages} >= {f"stream {i}" for i in range(40)}
        assert not [m for m in status.messages if m.body["status"] in ("failed", "errored")]


async def test_smsc_unbind_rebinds(amqp, publisher, settings):
    async with running_connector(**FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        assert await r.sim.unbind() == 1
        assert await r.sim.wait_for(lambda: r.sim.stats()["binds"] == 2 and r.connector.link.bound, 5)
        await r.send(publisher, "after the unbind")
        await status.wait(1, where=of("wired"))


async def test_redelivered_request_already_sent_is_not_submitted_again(amqp, publisher, settings):
    async with running_connector(**FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        request = await r.send(publisher, "only once")
        first = (await status.wait(1, where=of("wired")))[0].body

        class Redelivered:
            redelivered = True
            body = request.to_bytes()

        delivery = Delivery(Redelivered(), publisher)
        await r.connector.handle(request, delivery)
        await delivery.settle()
        again = await status.wait(2, where=of("wired"))
        assert again[1].body["external_id"] == first["external_id"]
        assert r.sim.stats()["submits"] == 1


async def test_requests_that_cannot_be_sent_fail_with_a_reason(amqp, publisher, settings):
    async with running_connector(**FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        urn = await r.send(publisher, "hi", to="ext:someone")
        expired = await r.send(publisher, "late", expires_on="2000-01-01T00:00:00Z")
        huge = await r.send(publisher, "x" * 160 * 300)
        failed = {m.body["id"]: m.body["error"]["code"] for m in await status.wait(3, where=of("failed"))}
        assert failed == {urn.id: "invalid_request", expired.id: "expired", huge.id: "invalid_request"}
        assert r.sim.stats()["submits"] == 0


# ---------------------------------------------------------------------------- receiving


@pytest.mark.parametrize(("split", "coding"), [("udh", "gsm7"), ("udh16", "ucs2"), ("sar", "gsm7"), ("sar", "ucs2"), ("payload", "gsm7")])
async def test_incoming_multipart_messages_are_reassembled(amqp, publisher, settings, split, coding):
    text = GSM_500 if coding == "gsm7" else UCS2_LONG
    async with running_connector(addresses=("+250700000001", "+250700000002"), **FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        statuses = await r.sim.inject_mo("+250788555001", "250700000002", text, coding, split)
        assert statuses and set(statuses) == {0}
        message = (await inbound.wait(1, where=lambda m: m.body["channel_uuid"] == r.channels[1]))[0]
        assert message.routing_key == f"msg.{r.channels[1]}"
        assert message.body["text"] == text
        assert (message.body["urn"], message.body["from"]) == ("tel:+250788555001", "+250788555001")
        assert message.body["transport"] == r.routing_key
        keys = [k async for k in r.runtime.redis.scan_iter(match=f"{settings.prefix}smpp:{r.name}:mo:*")]
        assert keys == []


async def test_incoming_single_message_goes_to_the_first_channel_when_no_address_matches(amqp, publisher, settings):
    async with running_connector(addresses=("+250700000001", "+250700000002"), **FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("250788555002", "12345", "STOP", "gsm7") == [0]
        message = (await inbound.wait(1))[0].body
        assert message["channel_uuid"] == r.channels[0] and message["text"] == "STOP"
        assert message["urn"] == "tel:+250788555002"


async def test_incoming_from_an_impossible_sender_is_refused(amqp, publisher, settings):
    async with running_connector(**FAST) as r:
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("+1", "250700000001", "who am I") == [0x0A]
        await asyncio.sleep(0.2)
        assert inbound.messages == []


async def test_deliver_sm_is_refused_with_rx_t_appn_when_the_broker_cannot_take_it(amqp, publisher, settings):
    async with running_connector(publisher=FailingPublisher(), **FAST) as r:
        assert await r.sim.inject_mo("+250788555003", "250700000001", "lost?") == [0x64]
        # the part that completes the message (whichever is handled last) is the one refused
        assert sorted(await r.sim.inject_mo("+250788555003", "250700000001", GSM_500, "gsm7", "udh")) == [0, 0, 0, 0x64]
        r.connector.publisher = r.runtime.publisher  # the broker is back: the SMSC's redelivery goes through
        (inbound,) = await taps(amqp, settings, "sms.inbound")
        assert await r.sim.inject_mo("+250788555003", "250700000001", GSM_500, "gsm7", "udh", ref=77) == [0, 0, 0, 0]
        assert (await inbound.wait(1))[0].body["text"] == GSM_500


async def test_receipt_is_refused_with_rx_t_appn_when_the_broker_cannot_take_it(amqp, publisher, settings):
    async with running_connector(publisher=FailingPublisher(), sim={"receipt_retry_delay": 0.3}, **FAST) as r:
        (status,) = await taps(amqp, settings, "sms.status")
        await r.send(publisher, "receipt later")
        await status.wait(1, where=of("wired"))
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_failed"] >= 1, 3)
        r.connector.publisher = r.runtime.publisher
        await status.wait(1, where=of("delivered"), timeout=5)
        assert await r.sim.wait_for(lambda: r.sim.stats()["receipts_acked"] == 1, 3)


# ---------------------------------------------------------------------------- the process


async def test_sigterm_unbinds_and_exits_zero(amqp, publisher, settings, tmp_path):
    from services.smsc_simulator import SmscSimulator

    sim = await SmscSimulator(accounts={"switch": PASSWORD}).start()
    name, channel = f"proc{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(channels_yaml(name, sim.port, [{"uuid": channel, "address": "+250700000001"}]))
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "services.smpp_connector", "--connection", name], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert await sim.wait_for(lambda: sim.stats()["binds"] == 1, 15), "the connector did not bind"
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{channel}")
        request = SendRequest(id=1, channel_uuid=channel, to="+250788123123", text="before the signal")
        await publisher.publish("sms.transport", f"smpp.{name}", request.to_bytes())
        await status.wait(1, timeout=10)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        assert code == 0, proc.stdout.read().decode()
        assert sim.stats()["unbinds"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        await sim.stop()


def test_unknown_connection_exits_2(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(channels_yaml("known", 2775, [{"uuid": str(uuid.uuid4())}]))
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path)}
    done = subprocess.run([sys.executable, "-m", "services.smpp_connector", "--connection", "nope"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and "no SMPP connection 'nope'" in done.stderr
