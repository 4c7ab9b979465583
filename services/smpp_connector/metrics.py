"""Prometheus metrics of the SMPP connector (served on METRICS_PORT by run_service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BOUND = Gauge("switchboard_smpp_bound", "1 while the session of this bind role is bound", ["connection", "bind"])
IN_FLIGHT = Gauge("switchboard_smpp_in_flight", "submit_sm sent and awaiting submit_sm_resp", ["connection"])
SUBMITS = Counter(
    "switchboard_smpp_submits_total", "submit_sm answered, by result (ok or the ESME status name)", ["connection", "result"]
)
MESSAGES = Counter(
    "switchboard_smpp_messages_total", "SendRequests handled, by the status they ended in", ["connection", "status"]
)
RECEIPTS = Counter("switchboard_smpp_receipts_total", "Delivery receipts, by outcome", ["connection", "outcome"])
MO = Counter("switchboard_smpp_mo_total", "Incoming deliver_sm that are not receipts, by outcome", ["connection", "outcome"])
