"""`binds: N`: copies beyond N wait as standbys and take over when a holder dies or stops
(issue 13 item 3), as real processes against the simulator."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import Tap

from .copies import start_copies, wait_until

# Long (processes, outages, kills): `make chaos` runs it, `make test` does not.
pytestmark = pytest.mark.chaos


async def holder_pid(redis_client, prefix: str, name: str) -> int:
    raw = await redis_client.get(f"{prefix}smpp:{name}:bind:0")
    assert raw is not None, "nobody holds the bind lease"
    return int(raw.decode().split(":")[1])


async def test_a_standby_takes_over_when_the_holder_is_killed_or_stopped(amqp, publisher, settings, redis_client,
                                                                         prefix, tmp_path):  # fmt: skip
    c = await start_copies(tmp_path)  # binds: 1 (the default)
    status = await Tap.open(amqp, settings, "sms.status", f"status.*.{c.channel}")
    try:
        c.start(2)
        assert await wait_until(lambda: c.bound() == 1, 20)
        await asyncio.sleep(2.0)
        assert c.bound() == 1, "a second copy bound although binds is 1"
        await c.send(publisher, 20)
        await status.wait(20, where=lambda m: m.body["status"] == "wired", timeout=20)

        holder = await holder_pid(redis_client, prefix, c.name)
        index = next(i for i, p in enumerate(c.procs) if p.pid == holder)
        c.kill(index)  # kill -9: its lease expires after the ttl (4 s)
        killed_at = time.monotonic()
        assert await wait_until(lambda: c.bound() == 1 and c.sim.stats()["binds"] == 2, 15), "the standby did not take over"
        took_over_s = time.monotonic() - killed_at
        await c.send(publisher, 20, first_id=21)
        await status.wait(40, where=lambda m: m.body["status"] == "wired", timeout=20)

        c.start()  # a new standby
        await asyncio.sleep(1.0)
        holder = await holder_pid(redis_client, prefix, c.name)
        index = next(i for i, p in enumerate(c.procs) if p.pid == holder)
        stopped_at = time.monotonic()
        c.procs[index].terminate()  # SIGTERM: the lease is released on the way out
        assert await wait_until(lambda: c.sim.stats()["binds"] == 3 and c.bound() == 1, 15)
        handed_over_s = time.monotonic() - stopped_at
        print(f"standby took over {took_over_s:.1f} s after kill -9, {handed_over_s:.1f} s after SIGTERM")
        assert took_over_s < 8
        assert handed_over_s < 8
    finally:
        c.stop_all()
        await c.sim.stop()
