"""Duplicates after kill -9 of the SMSC connector are bounded by the window (issue 13 item 3):
a message holds a window slot until its id record is written, so at most `window` messages
can have reached the SMSC without the record that stops their redelivery.

The connector copies reach Redis through a TCP proxy. Two kills happen in ordinary sending;
the third while Redis stalls (the records cannot be written), which is where an unbounded
connector kept submitting and sent a second's worth of messages twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import urlparse

import pytest

from tests.helpers import Tap
from tests.inbound.proxy import TcpProxy

from .copies import start_copies, wait_until

# Long (processes, outages, kills): `make chaos` runs it, `make test` does not.
pytestmark = pytest.mark.chaos

WINDOW = 10
COUNT = 4000
KILLS = 3
STALL_S = 1.5


async def test_kill_9_duplicates_stay_within_the_window(amqp, publisher, settings, redis_url, tmp_path):
    target = urlparse(redis_url)
    proxy = await TcpProxy(target.hostname, target.port or 6379).start()
    env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{(target.path or '/0').lstrip('/') or 0}"}
    c = await start_copies(tmp_path, window=WINDOW, registered_delivery=0, env=env)
    status = await Tap.open(amqp, settings, "sms.status", f"status.*.{c.channel}")
    try:
        c.start()
        assert await wait_until(lambda: c.bound() == 1, 20)
        sending = asyncio.ensure_future(c.send(publisher, COUNT))
        for kill in range(KILLS):
            goal = len(c.submit_times()) + COUNT // (KILLS + 1)
            assert await wait_until(lambda goal=goal: len(c.submit_times()) >= goal, 30), "the connector stopped sending"
            if kill == KILLS - 1:
                proxy.stall()
                await asyncio.sleep(STALL_S)
            c.kill(-1)
            proxy.resume()
            c.start()
            assert await wait_until(lambda: c.bound() == 1, 20)
        await sending
        wired = lambda: {m.body["id"] for m in status.messages if m.body["status"] == "wired"}  # noqa: E731
        assert await wait_until(lambda: len(wired()) >= COUNT, 60), f"{len(wired())} of {COUNT} wired"
        texts = Counter(s["short_message"] for s in list(c.sim.submits) if s["status"] == "ESME_ROK")
        duplicates = sum(n - 1 for n in texts.values() if n > 1)
        print(f"{KILLS} kills -9 with window {WINDOW} (the last during a {STALL_S:g} s Redis stall): "
              f"{duplicates} duplicates at the SMSC, {len(wired())}/{COUNT} messages wired")
        assert duplicates <= KILLS * WINDOW
    finally:
        c.stop_all()
        await c.sim.stop()
        await proxy.stop()
