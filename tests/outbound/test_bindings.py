"""Routing by channel bindings, with real router processes, the real broker and Redis.

A message the broker routed by a binding reaches its transport queue with the exchange it was
published to (`sms.outbound`); one the router forwarded comes from `sms.transport`. The tests
read the transport queues themselves (no connector runs here) and tell the two apart that way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from services.core.channels import parse_channels
from services.outbound.bindings import LEDGER, sync_bindings
from tests.helpers import Tap
from tests.outbound.test_router import wait_for_consumer

ROOT = Path(__file__).resolve().parents[2]


def channels_file(external: list[str], twilio: list[str]) -> str:
    chans = [{"uuid": u, "type": "external", "config": {"send_url": "http://127.0.0.1:9/s"}} for u in external]
    chans += [{"uuid": u, "type": "rest", "aggregator": "twilio", "config": {"account_sid": "AC1", "auth_token": "tok-1"}} for u in twilio]
    return yaml.safe_dump({"channels": chans})


def request(channel_uuid: str, msg_id: int) -> bytes:
    return orjson.dumps({"id": msg_id, "channel_uuid": channel_uuid, "to": "+250788123123", "text": "hi"})


class Queues:
    """Takes what arrives in the transport queues, keeping (exchange, body) per message."""

    def __init__(self, amqp, settings):
        self.amqp, self.settings = amqp, settings
        self.seen: dict[str, list[tuple[str, dict]]] = {}

    async def take(self, *queues: str) -> None:
        channel = await self.amqp.channel()
        try:
            for name in queues:
                queue = await channel.get_queue(self.settings.name(name), ensure=False)
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    self.seen.setdefault(name, []).append((message.exchange, orjson.loads(message.body)))
        finally:
            await channel.close()

    def of(self, queue: str, channel_uuid: str, exchange: str | None = None) -> list[dict]:
        return [b for x, b in self.seen.get(queue, []) if b.get("channel_uuid") == channel_uuid and exchange in (None, x)]


async def until(check, what: str, timeout: float = 20.0, every=None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, what
        if every is not None:
            await every()
        await asyncio.sleep(0.2)


def start_router(path: Path) -> subprocess.Popen:
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(path), "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "services.outbound.router"], cwd=ROOT, env=env)


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(15) == 0


@pytest.fixture
async def unbind_after(amqp, settings, redis_client):
    """Leave no channel bindings behind for later tests of this session's prefix."""
    yield
    await sync_bindings(amqp, settings, redis_client, load=lambda: parse_channels("channels: []"))


async def test_bindings_route_known_channels_and_the_router_fails_unknown_ones(amqp, publisher, settings, tmp_path, unbind_after):
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(channels_file([known], []))
    router = start_router(path)
    queues = Queues(amqp, settings)
    failed = await Tap.open(amqp, settings, "sms.status", f"status.failed.{unknown}")
    outbound = settings.name("sms.outbound")
    try:
        await wait_for_consumer(amqp, settings, "outbound.router")
        msg_id = iter(range(1, 10_000))

        async def bound() -> bool:
            await queues.take("transport.external")
            return bool(queues.of("transport.external", known, outbound))

        await until(bound, "the known channel was never routed by its binding",
                    every=lambda: publisher.publish("sms.outbound", f"send.{known}", request(known, next(msg_id))))  # fmt: skip
        await publisher.publish("sms.outbound", f"send.{unknown}", request(unknown, 99))
        (status,) = await failed.wait(1)
        assert status.body["error"]["code"] == "channel_not_found" and status.body["id"] == 99
        await queues.take("transport.external")
        assert not queues.of("transport.external", unknown)
    finally:
        stop(router)
        await failed.close()


async def test_sighup_adds_removes_and_moves_channels_without_a_restart(amqp, publisher, settings, tmp_path, unbind_after):
    moved, removed, added = (str(uuid.uuid4()) for _ in range(3))
    path = tmp_path / "channels.yaml"
    path.write_text(channels_file([moved, removed], []))
    router = start_router(path)
    queues = Queues(amqp, settings)
    failed = await Tap.open(amqp, settings, "sms.status", f"status.failed.{removed}")
    outbound = settings.name("sms.outbound")
    ids = iter(range(1, 100_000))
    try:
        await wait_for_consumer(amqp, settings, "outbound.router")

        async def routed_by_binding(queue: str, channel_uuid: str) -> None:
            async def check() -> bool:
                await queues.take(queue)
                return bool(queues.of(queue, channel_uuid, outbound))

            await until(check, f"{channel_uuid} never reached {queue} by a binding",
                        every=lambda: publisher.publish("sms.outbound", f"send.{channel_uuid}", request(channel_uuid, next(ids))))  # fmt: skip

        await routed_by_binding("transport.external", moved)
        await routed_by_binding("transport.external", removed)

        path.write_text(channels_file([added], [moved]))
        router.send_signal(signal.SIGHUP)
        await routed_by_binding("transport.external", added)  # the sync is done once the new binding routes
        await routed_by_binding("transport.rest.twilio", moved)
        await queues.take("transport.external", "transport.rest.twilio")
        before = len(queues.of("transport.external", moved))
        for _ in range(5):
            await publisher.publish("sms.outbound", f"send.{moved}", request(moved, next(ids)))
        await publisher.publish("sms.outbound", f"send.{removed}", request(removed, 777))
        (status,) = await failed.wait(1, where=lambda m: m.body["id"] == 777)
        assert status.body["error"]["code"] == "channel_not_found"
        await asyncio.sleep(0.5)
        await queues.take("transport.external", "transport.rest.twilio")
        assert len(queues.of("transport.external", moved)) == before, "the moved channel still reaches its old transport"
        assert not [b for b in queues.of("transport.external", removed) if b["id"] == 777]
        assert len([b for b in queues.of("transport.rest.twilio", moved) if b["id"] > 0]) >= 5
    finally:
        stop(router)
        await failed.close()


async def test_two_routers_converge_on_the_file_and_route_each_message_once(amqp, publisher, settings, redis_client, tmp_path, unbind_after):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(channels_file([first, second], []))
    routers = [start_router(path), start_router(path)]
    queues = Queues(amqp, settings)
    outbound = settings.name("sms.outbound")
    ids = iter(range(1, 100_000))
    try:
        await wait_for_consumer(amqp, settings, "outbound.router")

        async def settled(queue: str, channel_uuid: str) -> None:
            async def check() -> bool:
                await queues.take(queue)
                return bool(queues.of(queue, channel_uuid, outbound))

            await until(check, f"{channel_uuid} never reached {queue} by a binding",
                        every=lambda: publisher.publish("sms.outbound", f"send.{channel_uuid}", request(channel_uuid, next(ids))))  # fmt: skip

        await settled("transport.external", first)
        # Both routers reload the same change at the same moment: `first` moves, `second` goes.
        path.write_text(channels_file([], [first]))
        for proc in routers:
            proc.send_signal(signal.SIGHUP)
        await settled("transport.rest.twilio", first)
        await asyncio.sleep(1.0)  # let the slower of the two syncs finish too
        ledger = {e.decode() for e in await redis_client.smembers(settings.name(LEDGER))}
        assert ledger == {f"transport.rest.twilio send.{first}"}

        await queues.take("transport.external", "transport.rest.twilio")
        already = {b["id"] for b in queues.of("transport.rest.twilio", first)}
        sent = [next(ids) for _ in range(20)]
        for msg_id in sent:
            await publisher.publish("sms.outbound", f"send.{first}", request(first, msg_id))
        await asyncio.sleep(1.0)
        await queues.take("transport.external", "transport.rest.twilio")
        arrived = [b["id"] for b in queues.of("transport.rest.twilio", first) if b["id"] not in already]
        assert sorted(arrived) == sent, "each message once, by the binding or the router, never both"
        assert not [b for b in queues.of("transport.external", first) if b["id"] in sent]
    finally:
        stop(*routers)
