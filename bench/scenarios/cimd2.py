"""Scenario `cimd2`: N SendRequests with receipts through the router and the CIMD2 connector
to the simulator (`--protocol cimd2`) stop-and-wait (window 1: Kannel's cimd2 driver knows no
other), then Kannel's cimd2 driver against the same simulator process; rates as a ratio of
Kannel's, CPU ms per message per process. The machinery is the smpp scenario's
(`kannel_comparison`).

Reading Kannel's rate: a capture (tshark, 2 s of a 2,000-message run) shows its driver
sending the next 03 only when a packet arrives from the SMSC (here a 23 receipt, after the
simulator's 0.05 s receipt delay), not when the 53 answers the previous one; after a fast
first second it settles near 40 submits/s, so its rate depends on N and on the receipt delay."""

from __future__ import annotations

import os

from bench.common import Row
from bench.scenarios.smpp import kannel_comparison

N = int(os.environ.get("BENCH_CIMD2_N", "20000"))  # BENCH_CIMD2_N=300 for a quick run
WINDOW = 1


def run() -> list[Row]:
    return kannel_comparison("cimd2", WINDOW, N)
