"""Prometheus metrics of an SMSC connector (served on METRICS_PORT by run_service).

One family per protocol (`switchboard_smpp_*`, `switchboard_ucp_*`, `switchboard_cimd2_*`),
made once per process by :func:`metrics_for`, so that the SMPP names stay what they were.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge


class Metrics:
    def __init__(self, protocol: str):
        p = protocol
        self.protocol = protocol
        self.BOUND = Gauge(f"switchboard_{p}_bound", "1 while the session of this bind role is bound", ["connection", "bind"])
        self.IN_FLIGHT = Gauge(f"switchboard_{p}_in_flight", "submits sent and awaiting their answer", ["connection"])
        self.SUBMITS = Counter(f"switchboard_{p}_submits_total", "submits answered, by result (ok or the SMSC's error)",
                               ["connection", "result"])  # fmt: skip
        self.MESSAGES = Counter(f"switchboard_{p}_messages_total", "SendRequests handled, by the status they ended in",
                                ["connection", "status"])  # fmt: skip
        self.RECEIPTS = Counter(f"switchboard_{p}_receipts_total", "Delivery receipts, by outcome", ["connection", "outcome"])
        self.MO = Counter(f"switchboard_{p}_mo_total", "Incoming messages that are not receipts, by outcome",
                          ["connection", "outcome"])  # fmt: skip


@cache
def metrics_for(protocol: str) -> Metrics:
    return Metrics(protocol)
