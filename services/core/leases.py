"""Numbered leases in Redis: at most `count` processes hold one at a time (issue 13 item 3).

An SMSC connection says how many binds it may hold (`binds: N`). Every copy of its worker
asks for one of the N leases `<prefix>smsc:<connection>:bind:<i>` and binds only while it
holds one; a copy beyond N waits as a standby and polls. A holder renews its lease every
`ttl_s / 4`; when a holder dies (kill -9, a lost machine) its lease expires after `ttl_s`
and a standby takes over within `ttl_s + poll_s`. A holder that stops cleanly releases its
lease, so a standby takes over within `poll_s`.

While Redis is away nobody can take a lease, and a holder keeps its bind (there is nothing
to hand over to). When Redis comes back, possibly empty, the holders write their leases
again at their next renewal; standbys wait one `ttl_s` after a Redis error before they
compete again, so that a bind is not taken from a live holder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_TTL_S = 4.0
POLL_S = 0.5

#: Take the first free lease of KEYS; the index (0-based) or -1 when all are held.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then return i - 1 end
end
return -1
"""

#: Renew our lease, or take it again when it is free (Redis lost it); 0 when another holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """Another process holds the lease this one thought it held."""


class Leases:
    """The `count` leases under `key_base` (``<key_base>:<i>``); one process holds at most one."""

    def __init__(self, redis, key_base: str, count: int, *, ttl_s: float = LEASE_TTL_S, poll_s: float = POLL_S,
                 holder: str | None = None):  # fmt: skip
        if count < 1:
            raise ValueError("count must be at least 1")
        self.redis = redis
        self.keys = [f"{key_base}:{i}" for i in range(count)]
        self.ttl_ms = int(ttl_s * 1000)
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        # host:pid:random, so that an operator (or a test) sees which process holds a bind
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.index: int | None = None
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._redis_failed_at: float | None = None

    async def acquire(self) -> int:
        """Wait until one of the leases is free and take it; returns its index."""
        standby_logged = False
        while True:
            if self._redis_failed_at is None or time.monotonic() - self._redis_failed_at >= self.ttl_s:
                try:
                    index = int(await self._acquire(keys=self.keys, args=[self.holder, self.ttl_ms]))
                except (RedisError, OSError) as exc:
                    self._redis_failed(exc)
                    index = -1
                if index >= 0:
                    self.index = index
                    return index
                if not standby_logged:
                    log.info("all binds are held; waiting as a standby", extra={"leases": self.keys[0].rsplit(":", 1)[0],
                                                                                "binds": len(self.keys)})  # fmt: skip
                    standby_logged = True
            await asyncio.sleep(self.poll_s)

    async def renew(self) -> bool:
        """Renew the held lease. True when held (or Redis could not be asked: keep going);
        raises LeaseLost when another process holds it now."""
        if self.index is None:
            raise LeaseLost("no lease held")
        try:
            held = int(await self._renew(keys=[self.keys[self.index]], args=[self.holder, self.ttl_ms]))
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return False
        if not held:
            self.index = None
            raise LeaseLost("another process holds this bind's lease")
        return True

    async def hold(self) -> None:
        """Renew the held lease every ttl/4 until LeaseLost (raised) or cancellation."""
        while True:
            await asyncio.sleep(self.ttl_s / 4)
            await self.renew()

    async def release(self) -> None:
        """Give the lease back (a standby takes over at its next poll); errors are ignored:
        the lease then expires by itself."""
        if self.index is None:
            return
        key, self.index = self.keys[self.index], None
        try:
            await self._release(keys=[key], args=[self.holder])
        except (RedisError, OSError):
            pass

    def _redis_failed(self, exc: BaseException) -> None:
        if self._redis_failed_at is None or time.monotonic() - self._redis_failed_at > 10:
            log.warning("bind leases: Redis unreachable", extra={"error": repr(exc)})
        self._redis_failed_at = time.monotonic()
