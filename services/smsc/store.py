"""A connector's state in Redis, shared by every process of a connection and surviving
restarts. Keys (all prefixed with SWITCHBOARD_PREFIX; `<p>` is the protocol: smpp, ucp, cimd2):

`<p>:<conn>:id:<id key>` (72 h)
    One per accepted part, under the protocol's normalised id (SMPP: the submit_sm_resp id
    without case and leading zeros; UCP: recipient and SCTS; CIMD2: destination and 060): the
    SendRequest's `id`, `uuid` and channel, the part count and index, and the first part's id
    as the SMSC gave it (the `external_id` of every status). Written before the queue
    message is acked.
`sent:<channel>:<id>` (24 h)
    The `wired` status of a request whose parts were all accepted: a redelivered request is
    not submitted again, its status is republished (CONTRACT section 8).
`<p>:<conn>:dlr:<first id key>:delivered` / `...:<status>` (72 h)
    Receipt progress: the parts of a multipart message that said delivered (a set, so a
    repeated receipt counts once) and, for every message, a flag per status already
    published (a receipt the SMSC sends again publishes nothing the second time).
`<p>:<conn>:tps` and `<p>:<conn>:bind:<i>` (seconds)
    The connection's shared tps bucket (:class:`~services.core.ratelimit.SharedTokenBucket`)
    and its `binds` leases (:mod:`services.core.leases`).
`<p>:<conn>:mo:<source>:<destination>:<group>` (1 h)
    The parts of an incoming multipart message received so far (a hash seq -> the protocol's
    bytes for that part), so that a restart or another process holding the link loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from ..core.redis_batch import RedisBatch

MAPPING_TTL_S = 72 * 3600
SENT_TTL_S = 24 * 3600
MO_TTL_S = 3600

#: Count one part of a multipart message as delivered and return how many are: atomic, so
#: that of two processes adding the last parts at once exactly one sees the full count.
_PART_DELIVERED = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('SCARD', KEYS[1])
"""


@dataclass(frozen=True)
class Mapping:
    """What an accepted part's id stands for."""

    id: int | str
    uuid: str | None
    channel_uuid: str
    parts: int
    index: int
    external_id: str  # the first part's id exactly as the SMSC gave it
    accepted: bool = True  # False: another part of the message failed; its receipts are ignored

    def to_bytes(self) -> bytes:
        return orjson.dumps([self.id, self.uuid, self.channel_uuid, self.parts, self.index, self.external_id, self.accepted])

    @classmethod
    def from_bytes(cls, raw: bytes) -> Mapping:
        return cls(*orjson.loads(raw))


class Store:
    """The connector's Redis operations. The ones made per message and per receipt go
    through a :class:`~services.core.redis_batch.RedisBatch`: the writes and look-ups of
    concurrent submits and receipts share one round trip per event-loop turn.

    `id_key` turns an id as the SMSC wrote it in a submit answer into the key a receipt
    finds it under."""

    def __init__(self, redis: aioredis.Redis, prefix: str, protocol: str, connection: str,
                 id_key: Callable[[str], str] = str):  # fmt: skip
        self.redis = redis
        self.batch = RedisBatch(redis)
        self.prefix = prefix
        self.base = f"{prefix}{protocol}:{connection}:"
        self.id_key = id_key

    def sent_key(self, channel_uuid: str, msg_id: int | str) -> str:
        return f"{self.prefix}sent:{channel_uuid}:{msg_id}"

    async def record_submits(self, mappings: list[Mapping], message_ids: list[str], wired: bytes | None) -> None:
        """The id mappings of the accepted parts and, when the message is wired, its `sent:`
        record, in one round trip (shared with concurrent callers)."""
        items = [
            (f"{self.base}id:{self.id_key(message_id)}", mapping.to_bytes(), MAPPING_TTL_S)
            for mapping, message_id in zip(mappings, message_ids, strict=True)
        ]
        if wired is not None:
            first = mappings[0]
            items.append((self.sent_key(first.channel_uuid, first.id), wired, SENT_TTL_S))
        await self.batch.set_all(items)

    async def sent_status(self, channel_uuid: str, msg_id: int | str) -> bytes | None:
        (value,) = await self.batch.execute([("GET", self.sent_key(channel_uuid, msg_id))])
        return value

    async def lookup(self, keys: list[str]) -> Mapping | None:
        """The mapping stored under the first of `keys` (id keys) that has one."""
        if not keys:
            return None
        (values,) = await self.batch.execute([("MGET", *(f"{self.base}id:{k}" for k in keys))])
        for raw in values:
            if raw is not None:
                return Mapping.from_bytes(raw)
        return None

    def _group(self, mapping: Mapping) -> str:
        return f"{self.base}dlr:{self.id_key(mapping.external_id)}"

    async def part_delivered(self, mapping: Mapping) -> bool:
        """Count a multipart message's part as delivered; True once every part is."""
        key = f"{self._group(mapping)}:delivered"
        (count,) = await self.batch.execute([("EVAL", _PART_DELIVERED, 1, key, mapping.index, MAPPING_TTL_S)])
        return int(count) >= mapping.parts

    async def claim_status(self, mapping: Mapping, status: str) -> bool:
        """True the first time `status` is claimed for this message (one status per message
        and state); :meth:`release_status` undoes it when the publish failed."""
        (claimed,) = await self.batch.execute([("SET", f"{self._group(mapping)}:{status}", b"1", "NX", "EX", MAPPING_TTL_S)])
        return bool(claimed)

    async def release_status(self, mapping: Mapping, status: str) -> None:
        await self.batch.execute([("DEL", f"{self._group(mapping)}:{status}")])

    def mo_key(self, source: str, destination: str, group: str) -> str:
        return f"{self.base}mo:{source}:{destination}:{group}"

    async def add_mo_part(self, key: str, seq: int, total: int, data: bytes) -> list[bytes] | None:
        """Keep part `seq` of an incoming multipart message; the parts in order once all are in."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, str(seq), data)
        pipe.expire(key, MO_TTL_S)
        pipe.hgetall(key)
        _, _, stored = await pipe.execute()
        if len(stored) < total:
            return None
        parts = [stored.get(str(n).encode()) for n in range(1, total + 1)]
        return None if any(p is None for p in parts) else parts

    async def forget_mo(self, key: str) -> None:
        await self.redis.delete(key)
