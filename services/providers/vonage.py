"""Vonage (Nexmo) legacy SMS API `sms/json` and its webhooks (REST_ADAPTERS.md 9.3).

Vonage answers 200 even when it refuses a message: the verdict is each `messages[].status`
("0" accepted, "1" throttled, "5" internal error, anything else final), so the HTTP
status alone says little here.
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
    delivery_report,
    first_missing,
    is_gsm7,
    join_url,
    json_of,
    message_text,
    no_plus,
    number,
    parse_date,
    parts,
    status_url,
)

AGGREGATOR = "vonage"
DEFAULT_BASE_URL = "https://rest.nexmo.com"
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S",)
STATUS_MAP = {
    "delivered": "delivered",
    "accepted": "sent",
    "buffered": "sent",
    "failed": "failed",
    "expired": "failed",
    "rejected": "failed",
}


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    config = channel.config
    url = join_url(base_url(channel, DEFAULT_BASE_URL), "/sms/json")
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    callback = status_url(ctx, AGGREGATOR, channel.uuid, request.id)
    out = []
    for text in parts(channel, message_text(request), None):
        form = [
            ("api_key", str(config["api_key"])),
            ("api_secret", str(config["api_secret"])),
            ("from", no_plus(channel.address)),
            ("to", no_plus(number(channel, request))),
            ("text", text),
            ("type", "text" if is_gsm7(text) else "unicode"),
            ("status-report-req", "1"),
            ("callback", callback),
        ]
        out.append(OutgoingRequest("POST", url, dict(headers), urlencode(form).encode()))
    return out


def interpret(channel, response: httpx.Response) -> Outcome:
    if response.status_code != 200:
        return shared_outcome(response) or Outcome(
            "failed", code="response_status", message=f"HTTP {response.status_code}"
        )
    data = json_of(response)
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return Outcome("failed", code="response_content", message="answer has no messages")
    for item in messages:
        status = str(item.get("status", ""))
        if status == "0":
            continue
        text = str(item.get("error-text") or "")
        if status == "1":
            return Outcome("errored", code="connection_throttled", message=f"vonage 1: {text}")
        if status == "5":
            return Outcome("errored", code="connection_failed", message=f"vonage 5: {text}")
        return Outcome("failed", code=f"vonage_{status or 'unknown'}", message=text)
    ids = tuple(str(m["message-id"]) for m in messages if m.get("message-id"))
    if not ids:
        return Outcome("failed", code="response_content", message="answer has no message-id")
    return Outcome("wired", external_id=str(messages[0].get("message-id") or ids[0]), external_ids=ids)


# --- callbacks -------------------------------------------------------------------------


def parse_receive(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "msisdn", "messageId")
    if rejected:
        return rejected
    received_on = parse_date(params.get("message-timestamp"), DATE_FORMATS)
    if isinstance(received_on, Rejected):
        return received_on
    return [
        Incoming(
            sender=params["msisdn"],
            text=params.get("text", ""),
            external_id=params["messageId"],
            received_on=received_on,
        )
    ]


def parse_status(channel, request: CallbackRequest) -> CallbackResult:
    params = request.params
    rejected = first_missing(params, "messageId", "status")
    if rejected:
        return rejected
    detail = f"err-code {params['err-code']}" if params.get("err-code") else ""
    return delivery_report(
        STATUS_MAP, params["status"], external_id=params["messageId"], msg_id=request.query.get("id"), detail=detail
    )

CALLBACKS = {"receive": parse_receive, "status": parse_status}
ADAPTER = RestAdapter(AGGREGATOR, build, interpret, CALLBACKS)
