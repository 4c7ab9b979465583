"""The shared sender through the external adapter, against the real broker: bad input, the
SSRF guard, refusals before any request, retries and redelivery after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import yaml

from services.providers.external import ExternalAdapter
from tests.helpers import Tap

from .harness import MockProvider, Reply, running_sender, settings_for_cases
from .test_router import wait_for_consumer

ROOT = Path(__file__).resolve().parents[2]


def external(url: str, **fields) -> dict:
    return {"uuid": str(uuid.uuid4()), "type": "external", "address": "2020", **fields, "config": {"send_url": url}}


def request(channel: dict, msg_id, **fields) -> bytes:
    return orjson.dumps({"id": msg_id, "channel_uuid": channel["uuid"], "to": "+250788383383", "text": "hi", **fields})


async def test_poison_requests_are_dead_lettered_and_the_worker_goes_on(amqp, settings):
    provider = await MockProvider().start()
    channel = external(provider.route("p", [Reply(200)]) + "/send")
    async with running_sender([channel], [ExternalAdapter()], timeout=2) as runtime:
        dead = await Tap.open(amqp, settings, "sms.dead", "#")
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{channel['uuid']}")
        poison = {
            "not json": b"{id: 1,",
            "no id": orjson.dumps({"channel_uuid": channel["uuid"], "to": "+250788383383", "text": "hi"}),
            "no channel_uuid": orjson.dumps({"id": 2, "to": "+250788383383", "text": "hi"}),
            "no to": orjson.dumps({"id": 3, "channel_uuid": channel["uuid"], "text": "hi"}),
            "bad to": request(channel, 4, to="call me"),
        }
        for raw in poison.values():
            await runtime.publisher.publish("sms.transport", "external", raw)
        await runtime.publisher.publish("sms.transport", "external", request(channel, 5))
        parked = await dead.wait(len(poison))
        assert sorted(m.raw for m in parked) == sorted(poison.values())
        assert all(m.headers["x-error"] and m.headers["x-original-routing-key"] == "external" for m in parked)
        statuses = await status.wait(3)  # failed for the addressable ones (ids 3, 4), wired for 5
        await asyncio.sleep(0.3)
        by_id = {m.body["id"]: m.body for m in status.messages}
        assert set(by_id) == {3, 4, 5}, statuses
        assert by_id[3]["status"] == by_id[4]["status"] == "failed"
        assert by_id[3]["error"]["code"] == by_id[4]["error"]["code"] == "invalid_request"
        assert "to" in by_id[4]["error"]["message"]
        assert by_id[5]["status"] == "wired" and by_id[5]["transport"] == "external"
        assert len(provider.requests["p"]) == 1
        await dead.close()
        await status.close()
    await provider.close()


async def test_private_addresses_are_refused_unless_allowed(amqp, settings):
    provider = await MockProvider().start()
    base = provider.route("p", [Reply(200)])
    channels = [external(base + "/send"), external(base.replace("127.0.0.1", "localhost") + "/send"),
                external("http://[::ffff:10.0.0.1]:9/send"), external("http://169.254.169.254/latest/meta-data")]  # fmt: skip
    strict = settings_for_cases(send_allow_private=False)
    async with running_sender(channels, [ExternalAdapter()], strict, timeout=2) as runtime:
        status = await Tap.open(amqp, settings, "sms.status", "status.#")
        for number, channel in enumerate(channels):
            await runtime.publisher.publish("sms.transport", "external", request(channel, number))
        ours = {c["uuid"] for c in channels}
        got = await status.wait(len(channels), where=lambda m: m.body["channel_uuid"] in ours)
        for message in got:
            assert (message.body["status"], message.body["error"]["code"]) == ("failed", "channel_config")
            assert "non-public address" in message.body["error"]["message"]
        await status.close()
    assert provider.requests["p"] == []
    await provider.close()


async def test_refusals_before_any_request(amqp, settings):
    provider = await MockProvider().start()
    channel = external(provider.route("p", [Reply(200)]) + "/send")
    rest = {"uuid": str(uuid.uuid4()), "type": "rest", "aggregator": "generic", "config": {"send_url": "http://127.0.0.1:9/"}}
    missing = str(uuid.uuid4())
    async with running_sender([channel, rest], [ExternalAdapter()], timeout=2) as runtime:
        status = await Tap.open(amqp, settings, "sms.status", "status.#")
        logs = await Tap.open(amqp, settings, "sms.logs", "log.#")
        await runtime.publisher.publish("sms.transport", "external", request(channel, 1, expires_on="2001-01-01T00:00:00Z"))
        await runtime.publisher.publish("sms.transport", "external", request({"uuid": missing}, 2))
        await runtime.publisher.publish("sms.transport", "external", request(rest, 3))
        ours = {channel["uuid"], rest["uuid"], missing}
        got = await status.wait(3, where=lambda m: m.body["channel_uuid"] in ours)
        codes = {m.body["id"]: (m.body["status"], m.body["error"]["code"]) for m in got}
        assert codes == {1: ("failed", "expired"), 2: ("failed", "channel_not_found"), 3: ("failed", "channel_config")}
        entries = await logs.wait(3, where=lambda m: m.body["channel_uuid"] in ours)
        assert all(e.body["errors"] and not e.body["http"] for e in entries)
        await status.close()
        await logs.close()
    assert provider.requests["p"] == []
    await provider.close()


async def test_retry_goes_through_the_retry_queue_then_wired(amqp, settings):
    provider = await MockProvider().start()
    channel = external(provider.route("p", [Reply(503, "busy"), Reply(200, "ok")]) + "/send")
    fast = settings_for_cases([200, 400])
    async with running_sender([channel], [ExternalAdapter()], fast, timeout=2) as runtime:
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{channel['uuid']}")
        retry = await Tap.open(amqp, settings, "sms.retry", "200")
        await runtime.publisher.publish("sms.transport", "external", request(channel, 7, x_extra="kept"))
        errored, wired = await status.wait(2)
        assert (errored.body["status"], errored.body["error"]["code"], errored.body["error"]["retry_in_ms"]) == (
            "errored", "connection_failed", 200)  # fmt: skip
        assert (wired.body["status"], wired.body["attempt"]) == ("wired", 2)
        (retried,) = await retry.wait(1)
        assert retried.body["attempt"] == 1 and retried.body["x_extra"] == "kept"
        assert retried.headers["CC"] == ["external"]
        await status.close()
        await retry.close()
    assert len(provider.requests["p"]) == 2
    await provider.close()


CRASHING_CONNECTOR = """
import os, signal
from services.providers.external import ExternalAdapter
from services.outbound.sender import run_adapters

async def crash(request):
    os.kill(os.getpid(), signal.SIGKILL)  # after the provider accepted and the sent record was written, before the ack

run_adapters("external", [ExternalAdapter()], on_accepted=crash)
"""


async def test_a_crash_before_the_ack_does_not_send_twice(amqp, publisher, settings, tmp_path, redis_client):
    provider = await MockProvider().start()
    channel = external(provider.route("p", [Reply(200, "ok")]) + "/send")
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump({"channels": [channel]}))
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path), "LOG_LEVEL": "WARNING"}
    status = await Tap.open(amqp, settings, "sms.status", f"status.*.{channel['uuid']}")
    crashing = subprocess.Popen([sys.executable, "-c", CRASHING_CONNECTOR], cwd=ROOT, env=env)
    restarted = None
    try:
        await wait_for_consumer(amqp, settings, "transport.external")
        await publisher.publish("sms.transport", "external", request(channel, 99))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while crashing.poll() is None:
            assert loop.time() < deadline, "the connector never reached the crash point"
            await asyncio.sleep(0.05)
        assert crashing.returncode == -signal.SIGKILL
        assert len(provider.requests["p"]) == 1
        assert status.messages == []  # it died before publishing anything
        assert await redis_client.exists(settings.name(f"sent:{channel['uuid']}:99"))

        restarted = subprocess.Popen([sys.executable, "-m", "services.outbound.external"], cwd=ROOT, env=env)
        (wired,) = await status.wait(1, timeout=20)
        assert wired.body["status"] == "wired" and wired.body["id"] == 99
        await asyncio.sleep(0.3)
        assert len(provider.requests["p"]) == 1, "the redelivered request was sent again"
    finally:
        for proc in (crashing, restarted):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        await status.close()
        await provider.close()
