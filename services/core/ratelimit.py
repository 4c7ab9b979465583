"""The `tps` cap shared by every transport (a channel's for HTTP, a bind's for SMPP)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class TokenBucket:
    """At most `rate` takes per second with bursts of up to `burst` (default 1), as GCRA.

    With `burst` 1 there are at most `rate` takes in any one-second window, the first second
    included (a bucket that starts full let 2 x `rate` through in its first second). This is
    the bucket of one process; :class:`SharedTokenBucket` is the one for a limit that copies share.

    Each caller reserves its slot before sleeping, so concurrent senders queue fairly and the
    rate holds however many are in flight.
    """

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.interval = 1.0 / rate
        self.tolerance = (max(1.0, burst if burst is not None else 1) - 1) * self.interval
        self._tat = 0.0  # theoretical arrival time of the next take

    async def take(self) -> None:
        now = time.monotonic()
        tat = max(self._tat, now)
        self._tat = tat + self.interval
        wait = tat - self.tolerance - now
        if wait > 0:
            await asyncio.sleep(wait)


#: Reserve `ARGV[3]` consecutive GCRA slots on the theoretical arrival time kept in KEYS[1]
#: (microseconds on the Redis clock, so every process shares one clock). ARGV[1] is the
#: interval between two slots and ARGV[2] the burst tolerance (both µs). Returns each slot's
#: delay from now in µs. The key expires once it is in the past, so idle buckets leave nothing.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local delays = {}
for i = 1, tonumber(ARGV[3]) do
  local slot = tat - tolerance
  if slot < now then slot = now end
  delays[i] = slot - now
  tat = tat + interval
end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return delays
"""

#: A reserved slot not handed out within this much of its time is dropped, not used late:
#: using it now could put it next to another copy's slot and exceed the rate for a moment.
STALE_SLOT_S = 0.02
#: Waits between reservation attempts while Redis cannot be reached (the last repeats).
REDIS_RETRY_S = (0.1, 0.2, 0.5, 1.0)


class SharedTokenBucket:
    """`rate` takes per second for every process that uses the same `key`, together.

    The limit an operator sets is the connection's or the channel's, however many copies of
    a worker run (issue 13 item 3). It is a GCRA whose theoretical arrival time lives in
    Redis: each round trip reserves a batch of `max_batch` consecutive slots (0.1 s worth by
    default), each caller sleeps until its slot, and a slot nobody took within
    STALE_SLOT_S of its time is dropped (under light load a copy may leave up to a batch
    unused: the limit is never exceeded, only not fully used).
    `burst` 1 (the default) means at most `rate` takes in *any* one-second window, the first
    second included: the bucket does not start full.

    While Redis cannot be reached, :meth:`take` waits and tries again: a copy that cannot
    see the others must not guess their share. It logs once when that starts and once when
    Redis answers again.
    """

    def __init__(self, redis, key: str, rate: float, burst: float = 1, max_batch: int | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.redis = redis
        self.key = key
        self.rate = rate
        self.interval_us = max(1, round(1_000_000 / rate))
        self.tolerance_us = round((max(1.0, burst) - 1) * self.interval_us)
        self.max_batch = max_batch or max(1, int(rate / 10))
        self._script = redis.register_script(_RESERVE)
        self._waiters: deque[asyncio.Future] = deque()
        self._spare: deque[float] = deque()
        self._filler: asyncio.Task | None = None
        self.round_trips = 0
        self.late_slots = 0

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            slot = self._spare_slot(loop.time())
            if slot is None:
                future = loop.create_future()
                self._waiters.append(future)
                if self._filler is None or self._filler.done():
                    self._filler = asyncio.ensure_future(self._fill())
                slot = await future
            wait = slot - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # woken too late (a busy event loop): going now could land next to another
            # copy's slot, so this slot is dropped and the caller waits for a fresh one
            if loop.time() - slot <= STALE_SLOT_S:
                return
            self.late_slots += 1

    def _spare_slot(self, now: float) -> float | None:
        while self._spare:
            slot = self._spare.popleft()
            if slot >= now - STALE_SLOT_S:
                return slot
        return None

    async def _fill(self) -> None:
        """Reserve slots for the waiting callers, one round trip per batch, until none waits."""
        loop = asyncio.get_running_loop()
        while True:
            while self._waiters and self._waiters[0].done():
                self._waiters.popleft()  # cancelled while waiting
            if not self._waiters:
                return
            delays = await self._reserve(self.max_batch)
            now = loop.time()
            for delay_us in delays:
                slot = now + int(delay_us) / 1_000_000
                while self._waiters and self._waiters[0].done():
                    self._waiters.popleft()
                if self._waiters:
                    self._waiters.popleft().set_result(slot)
                else:
                    self._spare.append(slot)

    async def _reserve(self, count: int) -> list[int]:
        failures = 0
        down_since = 0.0
        while True:
            try:
                delays = await self._script(keys=[self.key], args=[self.interval_us, self.tolerance_us, count])
            except (RedisError, OSError) as exc:
                if failures == 0:
                    down_since = time.monotonic()
                    log.warning("shared tps bucket: Redis unreachable; sending waits",
                                extra={"key": self.key, "error": repr(exc)})  # fmt: skip
                await asyncio.sleep(REDIS_RETRY_S[min(failures, len(REDIS_RETRY_S) - 1)])
                failures += 1
                continue
            self.round_trips += 1
            if failures:
                log.info("shared tps bucket: Redis answers again",
                         extra={"key": self.key, "down_s": round(time.monotonic() - down_since, 2)})  # fmt: skip
            return delays
