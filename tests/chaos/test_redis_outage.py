"""Issue 13, item 1: a Redis outage never costs a message or its status.

3,000 messages at 150/s through a real router and external connector (processes) to a local
HTTP sink; the test's own redis-server is killed -9 during the run and started again
`CHAOS_REDIS_OUTAGE_S` (25) seconds later, and the connector is killed -9 and restarted
during the outage, so that it gets redeliveries, which must read the `sent:` record.

Before the fix, those redeliveries failed on Redis, were requeued every half second and the
quorum queue's delivery limit parked them in `dead.letters` without a status (many already
sent). Now they are held: nothing dead-lettered, every message gets its final status, at
most the connector's prefetch is sent twice, and sending resumes within a second of Redis.
The figures are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter

import orjson
import pytest
import yaml

from services.core.broker import Publisher, connect, delete_topology
from services.core.models import SendRequest
from services.core.settings import Settings
from tests.chaos.kit import RedisServer, StatusLog, Worker, start_sink
from tests.conftest import PREFIX

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

MESSAGES = int(os.environ.get("CHAOS_MESSAGES", 3000))
RATE = 150.0
OUTAGE_S = float(os.environ.get("CHAOS_REDIS_OUTAGE_S", 25))
SENDER_PREFETCH = 200  # services/outbound/sender.py DEFAULT_PREFETCH: the duplicates bound


async def _wait_started(worker: Worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for line in worker.log_lines() if line.get("msg") == "started") >= worker.starts:
            return
        assert worker.proc.returncode is None, f"{worker.args} exited: {worker.log_path.read_text()[-2000:]}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"{worker.args} did not start: {worker.log_path.read_text()[-2000:]}")


async def test_redis_outage_with_a_connector_kill_loses_nothing(tmp_path):
    prefix = f"{PREFIX}redis{uuid.uuid4().hex[:6]}."
    settings = Settings(prefix=prefix)
    redis = RedisServer(tmp_path)
    redis.start()
    server, sink_port, counts = await start_sink()
    channel_uuid = str(uuid.uuid4())
    channels = tmp_path / "channels.yaml"
    channels.write_text(yaml.safe_dump({"channels": [{
        "uuid": channel_uuid, "type": "external", "address": "2020",
        "config": {"send_url": f"http://127.0.0.1:{sink_port}/send?id={{{{id}}}}"},
    }]}))  # fmt: skip
    env = {"SWITCHBOARD_PREFIX": prefix, "REDIS_URL": redis.url, "SWITCHBOARD_CHANNELS": str(channels),
           "SEND_ALLOW_PRIVATE": "true", "LOG_LEVEL": "INFO"}  # fmt: skip
    router = Worker(("router",), env, tmp_path / "router.log")
    external = Worker(("external",), env, tmp_path / "external.log")
    connection = await connect(settings, attempts=3)  # the workers declare the topology
    publisher = await Publisher(connection, settings).start()
    statuses = StatusLog()
    await statuses.open(connection, settings.name("sms.status"))
    try:
        for worker in (router, external):
            await worker.start()
            await _wait_started(worker)

        async def publish_all() -> None:
            started = time.monotonic()
            for i in range(MESSAGES):
                delay = started + i / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = SendRequest(id=i, channel_uuid=channel_uuid, to="+250788123123", text=f"chaos {i}").to_bytes()
                await publisher.publish("sms.outbound", f"send.{channel_uuid}", body)

        publishing = asyncio.ensure_future(publish_all())
        await asyncio.sleep(4)
        redis.kill()
        redis_down = time.time()
        await asyncio.sleep(2)
        await external.kill()  # its unacked deliveries come back redelivered
        await asyncio.sleep(1)
        await external.start()
        await asyncio.sleep(max(0.0, OUTAGE_S - 3))
        redis.start()
        redis_back, redis_back_mono = time.time(), time.monotonic()
        await publishing

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(statuses.final()) < MESSAGES:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # late duplicates and dead letters

        final = statuses.final()
        without_status = [i for i in range(MESSAGES) if i not in final]
        sent = {int(k) for k in counts if k.isdigit()}
        lost = [i for i in range(MESSAGES) if i not in sent and "failed" not in final.get(i, ())]
        duplicates = sum(counts.values()) - len(counts)
        channel = await connection.channel()
        dead = (await channel.declare_queue(settings.name("dead.letters"), passive=True)).declaration_result.message_count
        await channel.close()
        failed = sum(1 for ids in final.values() if "failed" in ids)
        after = [t for t, s in statuses.seen if t > redis_back_mono]
        first_status_after_s = round(min(after) - redis_back_mono, 2) if after else None
        gate_back = [line for line in external.log_lines() if line.get("msg") == "dependency back; resuming"]
        warnings = {name: sum(1 for line in w.log_lines() if line.get("level") in ("warning", "error"))
                    for name, w in (("router", router), ("external", external))}  # fmt: skip
        figures = {
            "messages": MESSAGES, "outage_s": OUTAGE_S, "lost": len(lost), "without_status": len(without_status),
            "dead_lettered": dead, "failed": failed, "duplicates": duplicates,
            "first_status_after_redis_s": first_status_after_s,
            "gate_resumes": [line.get("outage_s") for line in gate_back],
            "warning_or_error_lines": warnings, "redis_down_at": redis_down, "redis_back_at": redis_back,
        }  # fmt: skip
        print("\nredis outage figures:", orjson.dumps(figures).decode())

        assert dead == 0, figures
        assert not without_status, figures
        assert not lost, figures
        assert failed == 0, figures
        assert duplicates <= SENDER_PREFETCH, figures
        assert gate_back, "the connector never held a message: the test did not exercise the outage"
        # "within a second" on a quiet machine (0.46 s measured); generous under a loaded CI
        assert first_status_after_s is not None and first_status_after_s < 5, figures
        # Item 6: warnings and errors are rate-limited, one line a second per message.
        for worker in (router, external):
            per_second = Counter((line["msg"], line["ts"][:19]) for line in worker.log_lines()
                                 if line.get("level") in ("warning", "error"))  # fmt: skip
            assert max(per_second.values(), default=0) <= 1, per_second.most_common(3)
    finally:
        for worker in (router, external):
            await worker.terminate()
        redis.kill()
        server.close()
        await statuses.close()
        await publisher.close()
        await delete_topology(connection, settings, [settings.name(n) for n in ("dead.statuses",)])
        await connection.close()
