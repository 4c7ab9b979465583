"""The shared tps bucket keeps its rate however many callers wait on it."""

from __future__ import annotations

import asyncio
import time

from services.core.ratelimit import TokenBucket


async def test_concurrent_takes_keep_the_rate():
    bucket = TokenBucket(rate=50, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(bucket.take() for _ in range(11)))
    # 11 takes at 50/s with no burst: the last one waits 10 intervals of 20 ms.
    assert time.monotonic() - started >= 0.19


async def test_burst_passes_without_waiting():
    bucket = TokenBucket(rate=100, burst=100)
    started = time.monotonic()
    for _ in range(50):
        await bucket.take()
    assert time.monotonic() - started < 0.1
