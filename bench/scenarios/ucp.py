"""Scenario `ucp`: N SendRequests with receipts through the router and the UCP connector to
the simulator (`--protocol ucp`) at window 10, then Kannel's emi driver against the same
simulator process at the same window; rates as a ratio of Kannel's, CPU ms per message per
process. The machinery is the smpp scenario's (`kannel_comparison`)."""

from __future__ import annotations

import os

from bench.common import Row
from bench.scenarios.smpp import kannel_comparison

N = int(os.environ.get("BENCH_UCP_N", "20000"))  # BENCH_UCP_N=500 for a quick run
WINDOW = 10


def run() -> list[Row]:
    return kannel_comparison("ucp", WINDOW, N)
