"""Bind leases in Redis: `binds: N` holders, the rest standbys that take over (issue 13 item 3)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from services.core.leases import LeaseLost, Leases
from tests.own_redis import OwnRedis


@pytest.fixture
def key_base(prefix):
    return f"{prefix}smsc:test{uuid.uuid4().hex[:6]}:bind"


async def test_at_most_count_holders_and_a_standby_takes_over_a_released_lease(redis_client, key_base):
    copies = [Leases(redis_client, key_base, 2, ttl_s=2, poll_s=0.1) for _ in range(3)]
    tasks = [asyncio.ensure_future(c.acquire()) for c in copies]
    done, pending = await asyncio.wait(tasks, timeout=1)
    assert len(done) == 2 and len(pending) == 1
    assert sorted(t.result() for t in done) == [0, 1]
    standby = copies[tasks.index(pending.pop())]
    holder = next(c for c in copies if c.index == 0)
    started = time.monotonic()
    await holder.release()
    assert await asyncio.wait_for(tasks[copies.index(standby)], 2) == 0
    assert time.monotonic() - started < 1.0
    for c in copies:
        await c.release()


async def test_a_dead_holders_lease_expires_and_the_standby_takes_over(redis_client, key_base):
    dead = Leases(redis_client, key_base, 1, ttl_s=1.0, poll_s=0.1)
    await dead.acquire()  # then never renewed: as after kill -9
    standby = Leases(redis_client, key_base, 1, ttl_s=1.0, poll_s=0.1)
    started = time.monotonic()
    assert await asyncio.wait_for(standby.acquire(), 3) == 0
    assert 0.8 <= time.monotonic() - started < 1.6
    with pytest.raises(LeaseLost):
        await dead.renew()
    await standby.release()


async def test_a_renewing_holder_keeps_its_lease(redis_client, key_base):
    holder = Leases(redis_client, key_base, 1, ttl_s=0.6, poll_s=0.05)
    await holder.acquire()
    keeper = asyncio.ensure_future(holder.hold())
    standby = asyncio.ensure_future(Leases(redis_client, key_base, 1, ttl_s=0.6, poll_s=0.05).acquire())
    await asyncio.sleep(2.0)
    assert not standby.done() and not keeper.done()
    keeper.cancel()
    standby.cancel()
    await holder.release()


async def test_redis_restarting_empty_leaves_the_holder_in_place():
    """A Redis that comes back without its data must not hand a live holder's bind to a
    standby: the holder writes its lease again, standbys wait one ttl first."""
    with OwnRedis() as server:
        client = aioredis.from_url(server.url, socket_connect_timeout=0.3, socket_timeout=0.3)
        holder = Leases(client, "smsc:x:bind", 1, ttl_s=1.2, poll_s=0.05)
        standby = Leases(client, "smsc:x:bind", 1, ttl_s=1.2, poll_s=0.05)
        await holder.acquire()
        keeper = asyncio.ensure_future(holder.hold())
        waiting = asyncio.ensure_future(standby.acquire())
        await asyncio.sleep(0.3)
        server.stop()
        await asyncio.sleep(1.5)
        server.start()  # empty
        await asyncio.sleep(2.5)
        assert not keeper.done(), keeper
        assert not waiting.done(), "the standby took the bind of a live holder"
        assert await client.get("smsc:x:bind:0") == holder.holder.encode()
        keeper.cancel()
        await holder.release()
        assert await asyncio.wait_for(waiting, 3) == 0
        await client.aclose()


def test_count_must_be_positive(redis_client):
    with pytest.raises(ValueError, match="at least 1"):
        Leases(redis_client, "k", 0)
