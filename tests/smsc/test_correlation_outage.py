"""SMPP correlation survives a Redis outage (issue 13 item 2).

The connector reaches Redis through a TCP proxy that the test cuts for 10 s while messages
go out and receipts come back; Redis itself (and what it holds) stays. Every `delivered`
status must name the message (`id`), none may be correlated by `external_id` alone, and no
message may be lost."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

import pytest

from services.smpp_connector.testkit import running_connector
from tests.helpers import Tap
from tests.inbound.proxy import TcpProxy

# Long (processes, outages, kills): `make chaos` runs it, `make test` does not.
pytestmark = pytest.mark.chaos

COUNT = 400
RATE = 40  # messages published per second
OUTAGE_S = 10.0


async def publish_paced(r, publisher, count: int, rate: float) -> None:
    started = time.monotonic()
    for i in range(count):
        await r.send(publisher, f"outage test {i}", msg_id=i + 1)
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))


async def test_a_redis_outage_leaves_no_receipt_uncorrelated(amqp, publisher, settings, redis_url, monkeypatch):
    target = urlparse(redis_url)
    proxy = await TcpProxy(target.hostname, target.port or 6379).start()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{proxy.port}/{(target.path or '/0').lstrip('/') or 0}")
    sim = {"receipt_delay": 0.05, "receipt_retry_delay": 0.5, "receipt_max_retries": 200}
    async with running_connector(sim=sim, receipt_lookup_delays_s=(0.1, 0.2, 0.4, 0.8, 1.6)) as r:
        status = await Tap.open(amqp, settings, "sms.status", f"status.*.{r.channel}")
        sending = asyncio.ensure_future(publish_paced(r, publisher, COUNT, RATE))
        await asyncio.sleep(2.0)
        await proxy.stop()
        outage_started = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        await proxy.start()
        resumed_at = time.monotonic()
        seen = len(status.messages)
        while len(status.messages) == seen and time.monotonic() - resumed_at < 30:
            await asyncio.sleep(0.02)
        resume_s = time.monotonic() - resumed_at
        await sending
        try:
            await status.wait(COUNT, where=lambda m: m.body["status"] == "delivered", timeout=60)
        except AssertionError:
            pass  # counted below
        await asyncio.sleep(1.0)  # late duplicates or strays
        statuses = [m.body for m in status.messages]
        uncorrelated = [s for s in statuses if s["status"] == "delivered" and s.get("id") is None]
        delivered_ids = {s["id"] for s in statuses if s["status"] == "delivered" and s.get("id") is not None}
        wired = [s for s in statuses if s["status"] == "wired"]
        print(f"outage {OUTAGE_S:g} s: delivered statuses {sum(s['status'] == 'delivered' for s in statuses)}, "
              f"with id null {len(uncorrelated)}, "
              f"messages delivered {len(delivered_ids)}/{COUNT}, wired {len(wired)}, "
              f"first status {resume_s:.2f} s after Redis returned; "
              f"SMSC accepted {r.sim.submit_statuses['ESME_ROK']} submits")
        assert not sending.done() or time.monotonic() - outage_started >= OUTAGE_S
        assert uncorrelated == []
        assert delivered_ids == set(range(1, COUNT + 1))
