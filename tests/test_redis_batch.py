"""RedisBatch against the real Redis: one round trip for concurrent callers, replies to each
in order, errors only to the caller whose command failed, a lost connection to everyone."""

import asyncio

import pytest
import redis.asyncio as aioredis

from services.core.redis_batch import RedisBatch


class CountingRedis:
    """Forwards to a real client and counts the pipelines executed."""

    def __init__(self, client):
        self.client = client
        self.round_trips = 0

    def pipeline(self, **kwargs):
        pipe = self.client.pipeline(**kwargs)
        execute = pipe.execute

        async def counted(**options):
            self.round_trips += 1
            return await execute(**options)

        pipe.execute = counted
        return pipe


async def test_concurrent_callers_share_one_round_trip(redis_client, prefix):
    counting = CountingRedis(redis_client)
    batch = RedisBatch(counting)
    keys = [f"{prefix}batch:{i}" for i in range(50)]
    await asyncio.wait_for(asyncio.gather(*(batch.set_all([(k, k.encode(), 60)]) for k in keys)), 5)
    assert counting.round_trips == 1
    results = await asyncio.wait_for(asyncio.gather(
        batch.execute([("GET", keys[0]), ("MGET", keys[1], keys[2])]),
        batch.execute([("GET", f"{prefix}batch:absent")]),
        batch.execute([("SET", keys[3], b"new", "NX", "EX", 60), ("SET", f"{prefix}batch:nx", b"1", "NX", "EX", 60)]),
    ), 5)  # fmt: skip
    assert counting.round_trips == 2
    assert results[0] == [keys[0].encode(), [keys[1].encode(), keys[2].encode()]]
    assert results[1] == [None]
    assert [bool(r) for r in results[2]] == [False, True]
    assert await redis_client.ttl(keys[0]) > 0


async def test_a_failing_command_fails_only_its_caller(redis_client, prefix):
    batch = RedisBatch(redis_client)
    key = f"{prefix}batch:list"
    await redis_client.rpush(key, b"x")
    await redis_client.expire(key, 60)
    good, bad = await asyncio.wait_for(asyncio.gather(
        batch.execute([("SET", f"{prefix}batch:ok", b"1", "EX", 60)]),
        batch.execute([("GET", key)]),  # WRONGTYPE
        return_exceptions=True,
    ), 5)  # fmt: skip
    assert good == [True]
    assert isinstance(bad, aioredis.ResponseError) and "WRONGTYPE" in str(bad)
    assert await redis_client.get(f"{prefix}batch:ok") == b"1"


async def test_redis_away_fails_every_caller_and_recovers_nothing_hanging():
    client = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    batch = RedisBatch(client)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(batch.execute([("GET", f"k{i}")]) for i in range(5)), return_exceptions=True), 10
        )
    finally:
        await client.aclose()
    assert len(results) == 5
    assert all(isinstance(r, aioredis.ConnectionError | OSError) for r in results)


async def test_no_commands_is_no_round_trip(redis_client):
    counting = CountingRedis(redis_client)
    assert await RedisBatch(counting).execute([]) == []
    assert counting.round_trips == 0


@pytest.mark.parametrize("count", [1, 3])
async def test_lua_scripts_run_through_the_batch(redis_client, prefix, count):
    batch = RedisBatch(redis_client)
    key = f"{prefix}batch:set:{count}"
    script = "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], 60) return redis.call('SCARD', KEYS[1])"
    replies = await asyncio.gather(*(batch.execute([("EVAL", script, 1, key, i)]) for i in range(count)))
    assert sorted(r[0] for r in replies) == list(range(1, count + 1))
