"""A Kannel smsbox as a transport: `cgi-bin/sendsms`, `dlr-url`, sms-service (REST_ADAPTERS.md 9.6).

Kannel gives no message id in its answer, so correlation rides on our own `dlr-url`: it
carries the SendRequest `id` and Kannel fills in the report type for `%d`. Through Kannel,
any SMSC it speaks to (UCP/EMI, CIMD2, SMPP) becomes a transport of ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from ..core.models import SendRequest
from .adapter import Outcome, OutgoingRequest, SendContext, shared_outcome
from .base import (
    INVALID_DATE,
    CallbackRequest,
    CallbackResult,
    Ignored,
    Incoming,
    Report,
    RestAdapter,
    base_url,
    config_int,
    first_missing,
    is_gsm7,
    join_url,
    message_text,
    number,
    parts,
    status_url,
)

AGGREGATOR = "kannel"
DEFAULT_DLR_MASK = 27  # delivered, not delivered, delivered to SMSC, not delivered to SMSC
#: smsbox's answers to an accepted sendsms (HTTP 202)
ACCEPTED_BODIES = ("0: Accepted", "3: Queued", "Sent.")
STATUS_MAP = {1: "delivered", 4: "sent", 8: "sent", 2: "failed", 16: "failed"}


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    config = channel.config
    endpoint = join_url(base_url(channel, None), "/cgi-bin/sendsms")
    dlr_mask = config_int(channel, "dlr_mask", DEFAULT_DLR_MASK)
    dlr_url = status_url(ctx, AGGREGATOR, channel.uuid, request.id) + "&status=%d"
    out = []
    for text in parts(channel, message_text(request), None):
        query = [("username", str(config["username"])), ("password", str(config["password"]))]
        if channel.address:
            query.append(("from", channel.address))
        query += [("to", number(channel, request)), ("text", text), ("dlr-mask", str(dlr_mask)), ("dlr-url", dlr_url)]
        if config.get("smsc"):
            query.append(("smsc", str(config["smsc"])))
        if request.high_priority:
            query.append(("priority", "1"))
        if not is_gsm7(text):
            query += [("coding", "2"), ("charset", "UTF-8")]
        out.append(OutgoingRequest("GET", endpoint + "?" + urlencode(query)))
    return out


def interpret(channel, response: httpx.Response) -> Outcome:
    body = response.text.strip()
    if 200 <= response.status_code < 300:
        if body.startswith(ACCEPTED_BODIES):
            return Outcome("wired")
        return Outcome("failed", code="response_content", message=body[:200])
    outcome = shared_outcome(response)
    if outcome.code == "response_status" and body:
        return Outcome("failed", code="response_status", message=body[:200])
    if body:
        return Outcome(outcome.status, code=outcome.code, message=f"HTTP {response.status_code}: {body[:200]}")
    return outcome


# --- callbacks -------------------------------------------------------------------------


def parse_receive(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "sender")
    if rejected:
        return rejected
    received_on = None
    if params.get("ts", "").strip():
        try:
            received_on = datetime.fromtimestamp(int(params["ts"].strip()), UTC)
        except (ValueError, OverflowError, OSError):
            return INVALID_DATE
    return [
        Incoming(
            sender=params["sender"],
            text=params.get("message", ""),
            external_id=params.get("id") or None,
            received_on=received_on,
        )
    ]


def parse_status(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "id", "status")
    if rejected:
        return rejected
    value = params["status"].strip()
    status = STATUS_MAP.get(int(value)) if value.isdigit() else None
    if status is None:
        return Ignored(f"report type {value!r} is not mapped")
    error_code = f"dlr_{int(value)}" if status == "failed" else None
    message = "not delivered" if int(value) == 2 else "not delivered to SMSC" if status == "failed" else ""
    return [Report(status=status, msg_id=params["id"], error_code=error_code, error_message=message)]


CALLBACKS = {"receive": parse_receive, "status": parse_status}
ADAPTER = RestAdapter(AGGREGATOR, build, interpret, CALLBACKS)
