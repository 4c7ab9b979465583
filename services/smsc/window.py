"""The window: at most ``size`` requests awaiting their answer on one session."""

from __future__ import annotations

import asyncio
from collections import deque


class Window:
    """At most ``size`` holders at once; waiters are served in order and can all be failed
    at once when the session closes (a Semaphore cannot)."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> None:
        if self.used < self.size and not self._waiters:
            self.used += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed to us as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot goes straight to the next waiter
                return
        self.used -= 1

    def fail(self, exc: Exception) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(exc)
