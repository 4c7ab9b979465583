"""Scaling a connector does not multiply the limits an operator set (issue 13 item 3): 2 and
3 copies of `switchboard run smpp` on one connection with `tps: 50` put at most 50 (+10 %)
submits on the SMSC in any second, and killing one leaves the rest sending at `tps`."""

from __future__ import annotations

import asyncio
import time

import pytest

from .copies import busiest_second, start_copies, wait_until

# Long (processes, outages, kills): `make chaos` runs it, `make test` does not.
pytestmark = pytest.mark.chaos

TPS = 50


@pytest.mark.parametrize("copies", [2, 3])
async def test_copies_share_the_connections_tps_and_survive_a_kill(amqp, publisher, tmp_path, copies):
    c = await start_copies(tmp_path, tps=TPS, binds=copies)
    try:
        c.start(copies)
        assert await wait_until(lambda: c.bound() == copies, 20), f"{c.bound()} of {copies} copies bound"
        await c.send(publisher, TPS * 14)
        assert await wait_until(lambda: len(c.submit_times()) >= TPS * 4, 15)
        before = c.submit_times()
        c.kill(0)
        killed_at = time.monotonic()
        await asyncio.sleep(5)
        after = c.submit_times(since=killed_at + 1.0)  # the survivors, once the kill settled
        everything = c.submit_times()
        print(f"{copies} copies: busiest second {busiest_second(before)} before the kill, "
              f"{busiest_second(everything)} overall; after the kill {len(after) / (time.monotonic() - killed_at - 1.0):.1f}/s")
        # The stamps are the simulator's, taken when its event loop reads each submit: on 2
        # shared cores it stalls now and then, and a stall of ~0.2 s moves that much backlog
        # into the next one-second window (59 once in CI, against 48-56 in other runs) though
        # the copies sent on time. Two-second windows absorb such a stall and still catch a
        # copy sending on its own budget (2 copies: ~200 in 2 s). The first-second and
        # any-second limit of the bucket itself is held by tests/test_shared_ratelimit.py.
        assert busiest_second(everything, span=2.0) <= 2 * TPS * 1.1
        # the survivors keep the connection at tps (margin: 2 shared cores run all copies, the SMSC and the broker)
        assert len(after) / (time.monotonic() - killed_at - 1.0) >= TPS * 0.7
    finally:
        c.stop_all()
        await c.sim.stop()
