"""Heartbeats on sms.health (CONTRACT section 12): every Runtime publishes them, unconfirmed,
not persistent, with a 30 s expiration; an SMPP connector adds its bind state."""

from __future__ import annotations

import asyncio

from services.core.heartbeat import HeartbeatPublisher, RateMeter, SmscHealth
from services.core.models import SendRequest
from services.core.service import Runtime
from services.core.settings import Settings
from services.smpp_connector.testkit import running_connector
from tests.helpers import Tap


async def _handler(body, delivery):
    await asyncio.sleep(0)


async def test_a_runtime_publishes_heartbeats_with_its_queues(amqp, settings):
    tap = await Tap.open(amqp, settings, "sms.health", "health.hb-test.#")
    from services.core.channels import parse_channels

    runtime = Runtime("hb-test", Settings(SWITCHBOARD_HEARTBEAT_S=0.2), parse_channels("channels: []\n", "x.yaml"))
    try:
        await runtime.connect()
        await runtime.consume("transport.external", _handler, model=SendRequest)
        beats = await tap.wait(2, timeout=10, where=lambda m: settings.name("transport.external") in m.body["queues"])
    finally:
        runtime.stopping.set()
        await runtime.close()
        await tap.close()
    body = beats[-1].body
    assert body["service"] == "hb-test" and body["interval_s"] == 0.2
    assert beats[-1].routing_key == f"health.hb-test.{body['instance']}"
    assert body["instance"].count(".") == 0 and body["pid"] > 0 and body["in_flight"] == 0
    assert body["state"] is None  # not an SMSC connector


async def test_heartbeats_are_not_persistent_and_expire(amqp, settings):
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(settings.name("sms.health"), "health.props.#")
    publisher = await HeartbeatPublisher(amqp, settings, "props", interval_s=60).start()
    try:
        message = None
        for _ in range(50):
            message = await queue.get(no_ack=True, fail=False)
            if message:
                break
            await asyncio.sleep(0.1)
        assert message is not None, "no heartbeat arrived"
        assert message.delivery_mode.value == 1 and message.expiration == 30
        assert message.content_type == "application/json" and message.message_id
    finally:
        await publisher.close()
        await channel.close()


def test_a_failing_source_does_not_stop_the_heartbeat(settings):
    publisher = HeartbeatPublisher(None, settings, "svc")
    publisher.add_source(lambda: 1 / 0)
    publisher.add_source(lambda: SmscHealth(connection="c", protocol="smpp", state="bound", window=3))
    beat = publisher.build()
    assert (beat.connection, beat.state, beat.window) == ("c", "bound", 3)


def test_rate_meter():
    meter = RateMeter()
    assert meter.rate(10) == 0.0
    assert meter.rate(10) == 0.0
    assert meter.rate(5) == 0.0  # a total that went down (a restart) is no negative rate


async def test_an_smpp_connector_reports_its_bind(amqp, settings, publisher):
    async with running_connector(connection={"tps": 50, "window": 7}) as running:
        hb = running.runtime.heartbeat
        beat = hb.build()
        assert (beat.connection, beat.protocol, beat.state) == (running.name, "smpp", "bound")
        assert beat.window_max == 7 and beat.tps_limit == 50
        await running.sim.stop()
        for _ in range(50):
            beat = hb.build()
            if beat.state != "bound":
                break
            await asyncio.sleep(0.1)
        assert beat.state == "connecting"
        assert beat.last_error  # the closed session or the failed bind
