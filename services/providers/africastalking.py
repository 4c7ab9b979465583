"""Africa's Talking SMS `version1/messaging` and its form callbacks (REST_ADAPTERS.md 9.5).

Africa's Talking takes no per-message callback URL: delivery reports go to the URL set in
its dashboard and are correlated by the provider's message id alone.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from ..core.models import SendRequest
from .adapter import Outcome, OutgoingRequest, SendContext, shared_outcome
from .base import (
    CallbackRequest,
    CallbackResult,
    Incoming,
    Rejected,
    RestAdapter,
    base_url,
    config_flag,
    delivery_report,
    first_missing,
    join_url,
    json_of,
    message_text,
    number,
    parse_date,
    parts,
)

AGGREGATOR = "africastalking"
DEFAULT_BASE_URL = "https://api.africastalking.com"
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "rfc3339")
WIRED_CODES = {100, 101, 102}  # Processed, Sent, Queued
RETRIED_CODES = {500, 501}  # InternalServerError, GatewayError
STATUS_MAP = {
    "Success": "delivered",
    "Sent": "sent",
    "Submitted": "sent",
    "Buffered": "sent",
    "Rejected": "failed",
    "Failed": "failed",
    "AbsentSubscriber": "failed",
    "Expired": "failed",
}


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    config = channel.config
    url = join_url(base_url(channel, DEFAULT_BASE_URL), "/version1/messaging")
    headers = {
        "apiKey": str(config["api_key"]),
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    to = number(channel, request)
    if not config_flag(channel, "use_national") and not to.startswith("+") and to.isdigit():
        to = "+" + to
    out = []
    for text in parts(channel, message_text(request), None):
        form = [("username", str(config["username"])), ("to", to), ("message", text)]
        if channel.address and not config_flag(channel, "is_shared"):
            form.append(("from", channel.address))
        out.append(OutgoingRequest("POST", url, dict(headers), urlencode(form).encode()))
    return out


def interpret(channel, response: httpx.Response) -> Outcome:
    outcome = shared_outcome(response)
    if outcome is not None:
        return outcome
    data = json_of(response)
    sms = data.get("SMSMessageData") if isinstance(data, dict) else None
    if not isinstance(sms, dict):
        return Outcome("failed", code="response_content", message="answer has no SMSMessageData")
    recipients = sms.get("Recipients")
    if not isinstance(recipients, list) or not recipients or not isinstance(recipients[0], dict):
        return Outcome("failed", code="response_content", message=str(sms.get("Message") or "no recipients"))
    first = recipients[0]
    try:
        code = int(first.get("statusCode"))
    except (TypeError, ValueError):
        return Outcome("failed", code="response_content", message="recipient has no statusCode")
    text = str(first.get("status") or "")
    if code in WIRED_CODES:
        message_id = first.get("messageId")
        if not message_id or message_id == "None":
            return Outcome("failed", code="response_content", message="recipient has no messageId")
        return Outcome("wired", external_id=str(message_id), external_ids=(str(message_id),))
    if code in RETRIED_CODES:
        return Outcome("errored", code="connection_failed", message=f"africastalking {code}: {text}")
    return Outcome("failed", code=f"africastalking_{code}", message=text)


# --- callbacks -------------------------------------------------------------------------


def parse_receive(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "from", "id")
    if rejected:
        return rejected
    received_on = parse_date(params.get("date"), DATE_FORMATS)
    if isinstance(received_on, Rejected):
        return received_on
    return [Incoming(sender=params["from"], text=params.get("text", ""), external_id=params["id"], received_on=received_on)]


def parse_status(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "id", "status")
    if rejected:
        return rejected
    # No `msg_id`: the `id` of this callback is Africa's Talking's own message id.
    return delivery_report(STATUS_MAP, params["status"], external_id=params["id"], detail=params.get("failureReason", ""))

CALLBACKS = {"receive": parse_receive, "status": parse_status}
ADAPTER = RestAdapter(AGGREGATOR, build, interpret, CALLBACKS)
