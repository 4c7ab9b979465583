"""One Redis round trip per event-loop turn for the commands of many concurrent tasks.

A connector handling hundreds of messages at once would otherwise make one round trip per
message and per receipt (a pooled connection, a request, a reply, a parse each).
:class:`RedisBatch` queues the commands that tasks submit during one loop turn, sends them
all in one non-transactional pipeline on the next, and hands each task back the replies to
its own commands, in order.

Guarantees: a task's commands are sent in its order, consecutively, and the task resumes only
once their replies arrived (so "write the mapping, *then* ack" still holds per message). A
failing command fails only the task that sent it; a failing round trip (Redis away) fails
every task of that batch with the same error; no task is left waiting. The commands of one
task are *not* atomic towards other clients (no MULTI): use a Lua script (``EVALSHA``/
``EVAL``) when they must be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

Command = tuple[Any, ...]  # ("SET", key, value, "EX", 60): as for redis.execute_command


class RedisBatch:
    def __init__(self, redis):
        self.redis = redis
        self._waiting: list[tuple[Sequence[Command], asyncio.Future]] = []
        self._flushes: set[asyncio.Task] = set()

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Run `commands` in the next batch; their replies, in order (with redis-py's usual
        reply parsing: SET -> True, MGET -> list ...). Raises the first error among them."""
        if not commands:
            return []
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((commands, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._start_flush)
        return await future

    async def set_all(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        """SET each (key, value, ttl_seconds); raises what Redis raised."""
        await self.execute([("SET", key, value, "EX", ttl) for key, value, ttl in items])

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        pipe = self.redis.pipeline(transaction=False)
        for commands, _ in batch:
            for command in commands:
                pipe.execute_command(*command)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # every waiter learns it; none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        position = 0
        for commands, future in batch:
            mine = replies[position:position + len(commands)]
            position += len(commands)
            if future.done():
                continue
            error = next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine)
