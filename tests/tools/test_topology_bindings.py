"""`switchboard topology` keeps the channel bindings as the router does (outbound/bindings.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def topology(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "topology", "--channels", str(path)],
                          cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=60)  # fmt: skip


async def test_topology_binds_the_file_and_removes_what_left_it(amqp, publisher, settings, tmp_path):
    channel_uuid = str(uuid.uuid4())
    path = tmp_path / "channels.yaml"
    path.write_text(f"channels:\n  - uuid: {channel_uuid}\n    type: external\n    config: {{send_url: 'http://127.0.0.1:9/s'}}\n")
    done = topology(path)
    assert done.returncode == 0, done.stderr
    # (earlier routers of this test session may have left bindings of their own files: they go now)
    assert "bound 1 channels to their transport queues, removed" in done.stdout

    body = orjson.dumps({"id": 4242, "channel_uuid": channel_uuid, "to": "+250788123123", "text": "hi"})
    await publisher.publish("sms.outbound", f"send.{channel_uuid}", body)
    channel = await amqp.channel()
    try:
        transport = await channel.get_queue(settings.name("transport.external"), ensure=False)
        router = await channel.get_queue(settings.name("outbound.router"), ensure=False)
        found = None
        while (message := await transport.get(no_ack=True, fail=False, timeout=5)) is not None:
            if orjson.loads(message.body).get("channel_uuid") == channel_uuid:
                found = message
        assert found is not None and found.exchange == settings.name("sms.outbound"), "not routed by its binding"

        path.write_text("channels: []\n")
        done = topology(path)
        assert done.returncode == 0, done.stderr
        assert "removed 1 stale bindings" in done.stdout
        await publisher.publish("sms.outbound", f"send.{channel_uuid}", body)  # no binding now: the router's queue
        unbound = None
        for _ in range(50):
            message = await router.get(no_ack=True, fail=False, timeout=5)
            if message is not None and orjson.loads(message.body).get("channel_uuid") == channel_uuid:
                unbound = message
                break
        assert unbound is not None, "an unbound channel's message must reach outbound.router"
    finally:
        await channel.close()


def test_topology_without_redis_says_so(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(f"channels:\n  - uuid: {uuid.uuid4()}\n    type: external\n    config: {{send_url: 'http://127.0.0.1:9/s'}}\n")
    env = {**os.environ, "LOG_LEVEL": "WARNING", "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "services.cli", "topology", "--channels", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "channel bindings not updated (Redis at redis://127.0.0.1:1/0)" in done.stderr
