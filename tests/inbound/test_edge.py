"""The inbound edge beyond the route table: de-duplication, the body limit while reading,
health/readiness/metrics, broker outages (503, then 200 again) and the process itself
(exit 2 on a broken channels file, SIGHUP reload, SIGTERM exit 0)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.inbound.app import create_app
from services.inbound.common import MAX_BODY_BYTES
from services.inbound.edge import Edge
from tests.helpers import Tap

from .conftest import CHANNELS, PUBLIC, channels_yaml, path
from .proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
DEDUPE = CHANNELS["dedupe"]["uuid"]


async def test_dedupe_answers_the_first_uuid_and_publishes_once(client, amqp, inbound_settings):
    tap = await Tap.open(amqp, inbound_settings, "sms.inbound", f"msg.{DEDUPE}")
    try:
        text = f"dup {time.monotonic_ns()}"
        first = await client.post(path("dedupe"), data={"from": "0788383383", "text": text})
        again = await client.post(path("dedupe"), data={"from": "+250788383383", "text": text})  # same URN
        other = await client.post(path("dedupe"), data={"from": "0788383383", "text": text + "!"})
        assert [r.status_code for r in (first, again, other)] == [200, 200, 200]
        first_uuid = first.json()["data"][0]["msg_uuid"]
        assert again.json()["data"][0]["msg_uuid"] == first_uuid
        assert other.json()["data"][0]["msg_uuid"] != first_uuid
        published = await tap.wait(2, where=lambda m: m.body["text"].startswith(text))
        await asyncio.sleep(0.2)
        assert sorted(m.body["uuid"] for m in tap.messages) == sorted(m.body["uuid"] for m in published)
        assert {m.body["uuid"] for m in published} == {first_uuid, other.json()["data"][0]["msg_uuid"]}
    finally:
        await tap.close()


async def test_dedupe_is_race_safe(client, amqp, inbound_settings):
    tap = await Tap.open(amqp, inbound_settings, "sms.inbound", f"msg.{DEDUPE}")
    try:
        text = f"race {time.monotonic_ns()}"
        answers = await asyncio.gather(
            *(client.post(path("dedupe"), data={"from": "0788383383", "text": text}) for _ in range(8))
        )
        assert {a.status_code for a in answers} == {200}
        uuids = {a.json()["data"][0]["msg_uuid"] for a in answers}
        assert len(uuids) == 1
        [published] = await tap.wait(1, where=lambda m: m.body["text"] == text)
        await asyncio.sleep(0.2)
        assert [m.body["uuid"] for m in tap.messages if m.body["text"] == text] == [published.body["uuid"]]
        assert uuids == {published.body["uuid"]}
    finally:
        await tap.close()


async def test_dedupe_claim_released_when_the_publish_fails(edge):
    dedupe = edge.dedupe
    key = dedupe.key(DEDUPE, "tel:+250788000001", f"failing {time.monotonic_ns()}")

    async def broker_down():
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        await dedupe.publish_once(key, "first-uuid", 60, broker_down)
    published = []

    async def works():
        published.append(True)

    # Not answered as a duplicate of a message that was never published: published now.
    assert await dedupe.publish_once(key, "second-uuid", 60, works) == "second-uuid"
    assert published == [True]
    assert await dedupe.publish_once(key, "third-uuid", 60, works) == "second-uuid"
    assert published == [True]


async def test_body_limit_is_enforced_while_reading(edge):
    """A chunked upload is cut off as soon as it passes 64 KiB, not buffered first."""
    app = create_app(edge)
    chunk = b"x" * 16_384
    handed_out = 0

    async def receive():
        nonlocal handed_out
        handed_out += 1
        return {"type": "http.request", "body": chunk, "more_body": handed_out < 1000}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": path("us"), "query_string": b"from=%2B250788383383",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), (b"transfer-encoding", b"chunked")],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert b"request body too large" in sent[1]["body"]
    assert handed_out == MAX_BODY_BYTES // len(chunk) + 1


async def test_health_ready_metrics(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).status_code == 200
    await client.get(path("us", "sent"), params={"id": "1"})
    metrics = (await client.get("/metrics")).text
    assert 'switchboard_inbound_requests_total{code="200",route="ex.sent"}' in metrics
    assert "switchboard_publish_seconds_bucket" in metrics
    missing = await client.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["data"][0]["error"] == "page not found"


def _via(proxy: TcpProxy, url: str) -> str:
    """The broker URL through the proxy, reconnecting quickly."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "reconnect_interval=0.2", ""))


async def _eventually(request, status: int, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        response = await request()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_broker_outage_answers_503_then_recovers(amqp, rabbitmq_url, inbound_settings):
    target = urlsplit(rabbitmq_url)
    proxy = await TcpProxy(target.hostname, target.port or 5672).start()
    settings = Settings(RABBITMQ_URL=_via(proxy, rabbitmq_url), SWITCHBOARD_PUBLIC_URL=PUBLIC)
    edge = Edge(Runtime("inbound-outage", settings, parse_channels(channels_yaml())), publish_timeout=1.0)
    await edge.start()
    tap = await Tap.open(amqp, inbound_settings, "sms.inbound", f"msg.{CHANNELS['us']['uuid']}")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(edge)), base_url=PUBLIC) as http:

            def receive(text):
                return lambda: http.post(path("us"), data={"from": "+250788383383", "text": text})

            assert (await receive("before")()).status_code == 200

            await proxy.stop()  # the broker connection drops
            down = await _eventually(receive("during outage"), 503, timeout=5)
            assert down.status_code == 503
            assert down.json() == {"message": "Error", "data": [{"type": "error", "error": down.json()["data"][0]["error"]}]}
            assert "broker unavailable" in down.json()["data"][0]["error"]
            assert (await _eventually(lambda: http.get("/ready"), 503, timeout=5)).status_code == 503
            assert (await http.get("/health")).status_code == 200

            await proxy.start()  # the broker is back on the same port: the robust connection reconnects
            up = await _eventually(receive("after outage"), 200)
            assert up.status_code == 200, up.text
            assert (await http.get("/ready")).status_code == 200

            proxy.stall()  # connected but nothing gets through: the publish times out
            started = time.monotonic()
            stalled = await receive("while stalled")()
            assert stalled.status_code == 503
            assert time.monotonic() - started < 3
            proxy.resume()

        texts = [m.body["text"] for m in await tap.wait(2, where=lambda m: m.body["text"] in ("before", "after outage"))]
        assert sorted(texts) == ["after outage", "before"]
        assert "during outage" not in [m.body["text"] for m in tap.messages]
    finally:
        await tap.close()
        proxy.resume()
        await asyncio.wait_for(edge.close(timeout=1), 10)
        await proxy.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(channels: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, SWITCHBOARD_CHANNELS=str(channels), INBOUND_HOST="127.0.0.1", INBOUND_PORT=str(port),
               SWITCHBOARD_PUBLIC_URL=PUBLIC, LOG_LEVEL="INFO")
    return subprocess.Popen([sys.executable, "-m", "services.inbound"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def _wait_health(http: httpx.AsyncClient, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the edge never answered /health")


def test_broken_channels_file_exits_2(tmp_path):
    broken = tmp_path / "channels.yaml"
    broken.write_text("channels:\n  - uuid: nope\n    type: external\n    config: {}\n")
    proc = _start(broken, _free_port())
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"channels.yaml: channels[0].uuid" in out


async def test_process_serves_reloads_on_sighup_and_stops_on_sigterm(tmp_path, amqp, inbound_settings):
    channels = tmp_path / "channels.yaml"
    channels.write_text(channels_yaml())
    port = _free_port()
    proc = _start(channels, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await _wait_health(http, proc)
            answer = await http.post(path("us"), data={"from": "+250788383383", "text": "over TCP"})
            assert answer.status_code == 200, answer.text

            added = "5a5a5a5a-0000-4000-8000-00000000beef"
            channels.write_text(channels_yaml() + f"- uuid: {added}\n  type: external\n  country: RW\n"
                                "  config: {send_url: 'http://127.0.0.1:9/send'}\n")
            assert (await http.post(f"/c/ex/{added}/receive", data={"from": "0788383383"})).status_code == 400
            tap = await Tap.open(amqp, inbound_settings, "sms.inbound", f"msg.{added}")
            try:
                proc.send_signal(signal.SIGHUP)
                reloaded = await _eventually(lambda: http.post(f"/c/ex/{added}/receive", data={"from": "0788383383"}), 200)
                assert reloaded.status_code == 200, reloaded.text
                [message] = await tap.wait(1)
                assert message.body["urn"] == "tel:+250788383383"
            finally:
                await tap.close()

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
