"""Infobip SMS API v2 `sms/2/text/advanced` and its JSON pushes (REST_ADAPTERS.md 9.4).

Infobip groups every message status into five groups (1 PENDING, 2 UNDELIVERABLE,
3 DELIVERED, 4 EXPIRED, 5 REJECTED); both the send answer and the delivery reports are
judged by group, and the status `name` becomes our error code.
"""

from __future__ import annotations

import base64

import httpx
import orjson

from ..core.models import SendRequest
from .adapter import ChannelConfigError, Outcome, OutgoingRequest, SendContext, shared_outcome
from .base import (
    CallbackRequest,
    CallbackResult,
    Ignored,
    Incoming,
    Rejected,
    Report,
    RestAdapter,
    base_url,
    join_url,
    json_of,
    message_text,
    no_plus,
    number,
    parse_date,
    parts,
    status_url,
)

AGGREGATOR = "infobip"
DEFAULT_BASE_URL = "https://api.infobip.com"
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "rfc3339")
WIRED_GROUPS = {1, 3}
FAILED_GROUPS = {2, 4, 5}
STATUS_MAP = {"DELIVERED": "delivered", "PENDING": "sent", "UNDELIVERABLE": "failed", "EXPIRED": "failed", "REJECTED": "failed"}


def authorization(channel) -> str:
    config = channel.config
    if config.get("api_key"):
        return f"App {config['api_key']}"
    if config.get("username") and config.get("password"):
        pair = f"{config['username']}:{config['password']}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    raise ChannelConfigError("config.api_key (or username and password) is required for infobip")


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    url = join_url(base_url(channel, DEFAULT_BASE_URL), "/sms/2/text/advanced")
    headers = {"Authorization": authorization(channel), "Content-Type": "application/json", "Accept": "application/json"}
    callback = status_url(ctx, AGGREGATOR, channel.uuid, request.id)
    to = no_plus(number(channel, request))
    out = []
    for text in parts(channel, message_text(request), None):
        message: dict = {}
        if channel.address:
            message["from"] = no_plus(channel.address)
        message.update(
            {
                "destinations": [{"to": to}],
                "text": text,
                "notifyUrl": callback,
                "notifyContentType": "application/json",
                "intermediateReport": True,
            }
        )
        if channel.config.get("transliteration"):
            message["transliteration"] = channel.config["transliteration"]
        out.append(OutgoingRequest("POST", url, dict(headers), orjson.dumps({"messages": [message]})))
    return out


def _group(status) -> int | None:
    if not isinstance(status, dict):
        return None
    try:
        return int(status.get("groupId"))
    except (TypeError, ValueError):
        return None


def interpret(channel, response: httpx.Response) -> Outcome:
    data = json_of(response)
    if 200 <= response.status_code < 300:
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            return Outcome("failed", code="response_content", message="answer has no messages")
        first = messages[0]
        status = first.get("status") if isinstance(first.get("status"), dict) else {}
        group = _group(status)
        if group in WIRED_GROUPS and first.get("messageId"):
            ids = tuple(str(m["messageId"]) for m in messages if isinstance(m, dict) and m.get("messageId"))
            return Outcome("wired", external_id=str(first["messageId"]), external_ids=ids)
        if group in FAILED_GROUPS:
            return Outcome("failed", code=f"infobip_{status.get('name') or group}", message=str(status.get("description") or ""))
        return Outcome("failed", code="response_content", message="answer has no accepted message")
    error = data.get("requestError", {}).get("serviceException") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not error.get("messageId"):
        return shared_outcome(response)
    code, text = error["messageId"], str(error.get("text") or "")
    if response.status_code == 429:
        return Outcome("errored", code="connection_throttled", message=f"infobip {code}: {text}")
    if response.status_code >= 500:
        return Outcome("errored", code="connection_failed", message=f"infobip {code}: {text}")
    return Outcome("failed", code=f"infobip_{code}", message=text)


# --- callbacks -------------------------------------------------------------------------


def _results(request: CallbackRequest) -> list[dict] | Rejected:
    body = request.json
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        return Rejected(400, "field 'results' required")
    return results


def _text(value) -> str:
    return "" if value is None else str(value)


def parse_receive(channel, request: CallbackRequest) -> CallbackResult:
    results = _results(request)
    if isinstance(results, Rejected):
        return results
    messages = []
    for result in results:
        if not _text(result.get("from")).strip():
            return Rejected(400, "field 'from' required")
        received_on = parse_date(result.get("receivedAt") if isinstance(result.get("receivedAt"), str) else None, DATE_FORMATS)
        if isinstance(received_on, Rejected):
            return received_on
        messages.append(
            Incoming(
                sender=_text(result["from"]),
                text=_text(result.get("text")),
                external_id=_text(result.get("messageId")) or None,
                received_on=received_on,
            )
        )
    return messages


def parse_status(channel, request: CallbackRequest) -> CallbackResult:
    results = _results(request)
    if isinstance(results, Rejected):
        return results
    reports = []
    for result in results:
        if not _text(result.get("messageId")).strip():
            return Rejected(400, "field 'messageId' required")
        status = result.get("status") if isinstance(result.get("status"), dict) else {}
        group_name = _text(status.get("groupName"))
        mapped = STATUS_MAP.get(group_name)
        if mapped is None:
            continue
        error_code, message = None, ""
        if mapped == "failed":
            error = result.get("error") if isinstance(result.get("error"), dict) else {}
            error_code = f"dlr_{group_name}"
            message = " ".join(n for n in (_text(status.get("name")), _text(error.get("name"))) if n)
        reports.append(
            Report(
                status=mapped,
                external_id=_text(result["messageId"]),
                msg_id=request.query.get("id"),
                error_code=error_code,
                error_message=message,
            )
        )
    return reports or Ignored("no result with a mapped status")


CALLBACKS = {"receive": parse_receive, "status": parse_status}
ADAPTER = RestAdapter(AGGREGATOR, build, interpret, CALLBACKS)
