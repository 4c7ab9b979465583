"""Duplicates after kill -9 of the SMSC connector are bounded by the window (issue 13 item 3):
the window slot of a submit is freed only once its id record is written, so at most `window`
messages can have reached the SMSC without a record that stops their redelivery."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.helpers import Tap

from .copies import start_copies, wait_until

WINDOW = 10
COUNT = 4000
KILLS = 3


async def test_kill_9_duplicates_stay_within_the_window(amqp, publisher, settings, tmp_path):
    c = await start_copies(tmp_path, window=WINDOW, registered_delivery=0)
    status = await Tap.open(amqp, settings, "sms.status", f"status.*.{c.channel}")
    try:
        c.start()
        assert await wait_until(lambda: c.bound() == 1, 20)
        sending = asyncio.ensure_future(c.send(publisher, COUNT))
        for kill in range(KILLS):
            target = len(c.submit_times()) + COUNT // (KILLS + 1)
            assert await wait_until(lambda: len(c.submit_times()) >= target, 30), (
                f"the connector stopped sending: {len(c.submit_times())} accepted, {c.sim.stats()}")
            c.kill(-1)
            c.start()
            assert await wait_until(lambda: c.bound() == 1, 20)
        await sending
        wired = lambda: {m.body["id"] for m in status.messages if m.body["status"] == "wired"}  # noqa: E731
        assert await wait_until(lambda: len(wired()) >= COUNT, 60), f"{len(wired())} of {COUNT} wired"
        texts = Counter(s["short_message"] for s in list(c.sim.submits) if s["status"] == "ESME_ROK")
        duplicates = sum(n - 1 for n in texts.values() if n > 1)
        wired_ids = wired()
        print(f"{KILLS} kills -9 with window {WINDOW}: {duplicates} duplicates at the SMSC, "
              f"{len(wired_ids)}/{COUNT} messages wired")
        assert wired_ids == set(range(1, COUNT + 1))
        assert duplicates <= KILLS * WINDOW
    finally:
        c.stop_all()
        await c.sim.stop()
