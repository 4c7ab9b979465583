"""The router against the real broker: routing per channel type, failures (SIGHUP reload and
channel bindings: test_bindings.py)."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import yaml

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.outbound import router
from tests.helpers import Tap

EXTERNAL, TWILIO, SMPP = (str(uuid.uuid4()) for _ in range(3))
CHANNELS = {
    "channels": [
        {"uuid": EXTERNAL, "type": "external", "config": {"send_url": "http://127.0.0.1:9/send"}},
        {"uuid": TWILIO, "type": "rest", "aggregator": "twilio", "config": {"account_sid": "AC1", "auth_token": "tok-12345"}},
        {"uuid": SMPP, "type": "smpp", "connection": "smsc-r"},
    ],
    "smpp_connections": [{"name": "smsc-r", "host": "127.0.0.1", "system_id": "x"}],
}


def body(channel_uuid: str, msg_id: int, **extra) -> bytes:
    # Odd spacing and an unknown field: the router must pass the bytes on untouched.
    return (
        b'{"id": %d,  "channel_uuid": "%s", "to": "+250788123123", "text": "hi", "x_custom": {"k": [1, 2]}%s}'
        % (msg_id, channel_uuid.encode(), b"".join(b', "%s": %s' % (k.encode(), orjson.dumps(v)) for k, v in extra.items()))
    )


@pytest.fixture
async def running_router(settings):
    runtime = Runtime("router", settings, parse_channels(yaml.safe_dump(CHANNELS)))
    await runtime.connect()
    await router.setup(runtime)
    yield runtime
    await runtime.close()


async def test_routes_each_type_with_the_original_bytes(running_router, settings):
    runtime = running_router
    taps = {key: await Tap.open(runtime.connection, settings, "sms.transport", key) for key in ("external", "rest.twilio", "smpp.smsc-r")}
    sent = {"external": body(EXTERNAL, 1), "rest.twilio": body(TWILIO, 2), "smpp.smsc-r": body(SMPP, 3)}
    for key, raw in sent.items():
        uuid_ = orjson.loads(raw)["channel_uuid"]
        await runtime.publisher.publish("sms.outbound", f"send.{uuid_}", raw, message_id=f"m-{key}")
    for key, tap in taps.items():
        (got,) = await tap.wait(1)
        assert got.raw == sent[key]
        await tap.close()


async def test_unknown_channel_and_expired_fail(running_router, settings):
    runtime = running_router
    missing = str(uuid.uuid4())
    status = await Tap.open(runtime.connection, settings, "sms.status", "status.failed.*")
    transport = await Tap.open(runtime.connection, settings, "sms.transport", "external")
    await runtime.publisher.publish("sms.outbound", f"send.{missing}", body(missing, 11))
    await runtime.publisher.publish("sms.outbound", f"send.{EXTERNAL}", body(EXTERNAL, 12, expires_on="2020-01-01T00:00:00Z"))
    await runtime.publisher.publish("sms.outbound", f"send.{EXTERNAL}", body(EXTERNAL, 13, expires_on="2999-01-01T00:00:00Z"))
    failed = await status.wait(2)
    by_id = {m.body["id"]: m.body for m in failed}
    assert by_id[11]["error"]["code"] == "channel_not_found" and by_id[11]["channel_uuid"] == missing
    assert by_id[12]["error"]["code"] == "expired" and by_id[12]["transport"] == "external"
    routed = await transport.wait(1, where=lambda m: m.body["id"] == 13)
    assert routed[0].body["expires_on"] == "2999-01-01T00:00:00Z"
    assert not [m for m in transport.messages if m.body["id"] in (11, 12)]
    await status.close()
    await transport.close()


async def test_poison_is_dead_lettered_and_routing_goes_on(running_router, settings):
    runtime = running_router
    dead = await Tap.open(runtime.connection, settings, "sms.dead", "#")
    status = await Tap.open(runtime.connection, settings, "sms.status", "status.failed.*")
    transport = await Tap.open(runtime.connection, settings, "sms.transport", "external")
    await runtime.publisher.publish("sms.outbound", f"send.{EXTERNAL}", b"not json")
    await runtime.publisher.publish("sms.outbound", f"send.{EXTERNAL}", body(EXTERNAL, 21).replace(b"+250788123123", b"12"))
    await runtime.publisher.publish("sms.outbound", f"send.{EXTERNAL}", body(EXTERNAL, 22))
    parked = await dead.wait(2)
    assert all(m.headers.get("x-error") for m in parked)
    (bad_to,) = await status.wait(1, where=lambda m: m.body["id"] == 21)
    assert bad_to.body["error"]["code"] == "invalid_request"
    await transport.wait(1, where=lambda m: m.body["id"] == 22)
    for tap in (dead, status, transport):
        await tap.close()


async def wait_for_consumer(connection, settings, queue: str, timeout: float = 15.0) -> None:
    """Until someone consumes `queue` (a fresh channel per look: aio-pika caches declarations)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(settings.name(queue), passive=True)
            if declared.declaration_result.consumer_count:
                return
        finally:
            await channel.close()
        await asyncio.sleep(0.1)
    raise AssertionError(f"nobody consumes {queue}")
