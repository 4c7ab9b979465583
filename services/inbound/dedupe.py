"""De-duplication of incoming messages per channel (`dedupe_window_s`), as courier does.

The same channel, URN and text within the window is answered 200 with the first message's
`msg_uuid` and published once. It must hold with concurrent copies of the edge and never
lose a message, so a key goes through two states in Redis:

    claim:   SET <key> "p:<uuid>" NX EX <window>   (pending: this request publishes)
    confirm: "p:<uuid>" -> "<uuid>", same TTL        (after the broker confirmed)
    release: DEL <key> if still "p:<uuid>"            (the publish failed: 503, nothing kept)

A duplicate that finds a confirmed uuid answers with it; one that finds a pending claim waits
for it to be confirmed or released (then claims itself), and answers 503 if neither happens in
time, so a 200 is only ever given for a message the broker holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from .common import PUBLISH_TIMEOUT_S, BrokerUnavailable

_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
_CONFIRM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
log = logging.getLogger(__name__)

_PENDING = b"p:"
_POLL_S = 0.02


class StoreUnavailable(BrokerUnavailable):
    def __init__(self):
        super().__init__("de-duplication store unavailable, try again later")


class Deduplicator:
    def __init__(self, redis, key_prefix: str, wait_s: float = PUBLISH_TIMEOUT_S + 1):
        self.redis = redis
        self.key_prefix = key_prefix
        self.wait_s = wait_s
        self._claim = redis.register_script(_CLAIM)
        self._confirm = redis.register_script(_CONFIRM)
        self._release = redis.register_script(_RELEASE)

    def key(self, channel_uuid: str, urn: str, text: str) -> str:
        digest = hashlib.sha256(f"{urn}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.key_prefix}dedupe:{channel_uuid}:{digest}"

    async def publish_once(
        self, key: str, msg_uuid: str, window_s: int, publish: Callable[[], Awaitable[None]]
    ) -> str:
        """Publish unless an equal message was published within the window; returns the uuid
        to answer with (ours, or the first message's)."""
        pending = _PENDING + msg_uuid.encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        try:
            while True:
                current = await self._claim(keys=[key], args=[pending, window_s])
                if current is None:
                    break  # claimed: we publish
                if not current.startswith(_PENDING):
                    return current.decode()
                if loop.time() >= deadline:
                    raise BrokerUnavailable()
                await asyncio.sleep(_POLL_S)
        except RedisError as exc:
            # one line a second at most (core/logs.py RepeatFilter), with the count left out
            log.warning("de-duplication store unavailable; answering 503",
                        extra={"channel_key": key.rsplit(":", 1)[0], "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            raise StoreUnavailable() from None
        try:
            await publish()
        except BaseException:
            try:
                await self._release(keys=[key], args=[pending])
            except RedisError:
                pass  # the claim expires with the window; until then duplicates answer 503
            raise
        try:
            await self._confirm(keys=[key], args=[pending, msg_uuid])
        except RedisError:
            pass  # published and confirmed: answer 200; a duplicate may wait on the claim
        return msg_uuid
