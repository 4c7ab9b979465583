"""`switchboard topology` declares the callbacks worker's queues for the doors' channels."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import aio_pika

from services.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def test_topology_declares_the_callbacks_queues(rabbitmq_url):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "SWITCHBOARD_PREFIX": prefix}
    result = subprocess.run([sys.executable, "-m", "services.cli", "topology", "--channels", "compose/channels.example.yaml"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("callbacks.status", "callbacks.inbound", "callbacks.deliver"):
        assert prefix + name in result.stdout
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(prefix + "callbacks.status", passive=True)
        assert queue.declaration_result.message_count == 0
        exchange = await channel.get_exchange(prefix + "sms.status")
        status = aio_pika.Message(b"{}", delivery_mode=2)
        await exchange.publish(status, "status.wired.5c2d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f")  # a door's channel
        await exchange.publish(status, "status.wired.00000000-0000-4000-8000-000000000000")  # not a door's
        queue = await channel.declare_queue(prefix + "callbacks.status", passive=True)
        assert queue.declaration_result.message_count == 1
    finally:
        from services.core.broker import delete_topology

        await delete_topology(connection, Settings(SWITCHBOARD_PREFIX=prefix),
                              [prefix + q for q in ("callbacks.status", "callbacks.inbound", "callbacks.deliver")])  # fmt: skip
        await connection.close()
