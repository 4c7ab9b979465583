"""Scenario `cimd2`: N SendRequests with receipts through the router and the CIMD2 connector
to the simulator (`--protocol cimd2`) stop-and-wait (window 1: Kannel's cimd2 driver knows no
other), then Kannel's cimd2 driver against the same simulator process; rates as a ratio of
Kannel's, CPU ms per message per process. The machinery is the smpp scenario's
(`kannel_comparison`)."""

from __future__ import annotations

import os

from bench.common import Row
from bench.scenarios.smpp import kannel_comparison

N = int(os.environ.get("BENCH_CIMD2_N", "20000"))  # BENCH_CIMD2_N=300 for a quick run
WINDOW = 1


def run() -> list[Row]:
    return kannel_comparison("cimd2", WINDOW, N)
