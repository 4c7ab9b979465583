"""Twilio Programmable Messaging: the Messages resource and its webhooks (REST_ADAPTERS.md 9.2).

Send: `POST /2010-04-01/Accounts/{sid}/Messages.json`, basic auth `sid:auth_token`, form
body, a `StatusCallback` per message. Callbacks are form POSTs signed with
`X-Twilio-Signature`, which we check as Twilio's helper libraries do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from ..core.models import SendRequest
from .adapter import Outcome, OutgoingRequest, SendContext, shared_outcome
from .base import (
    CallbackRequest,
    CallbackResult,
    Incoming,
    Rejected,
    RestAdapter,
    attachment_url,
    base_url,
    config_flag,
    delivery_report,
    first_missing,
    join_url,
    json_of,
    number,
    parts,
    status_url,
)

AGGREGATOR = "twilio"
DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_MAX_LENGTH = 1600
#: Answer to the `receive` webhook: empty TwiML, so that Twilio sends no reply.
RECEIVE_ANSWER = (b'<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml")

STATUS_MAP = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    config = channel.config
    url = join_url(base_url(channel, DEFAULT_BASE_URL), f"/2010-04-01/Accounts/{config['account_sid']}/Messages.json")
    credentials = base64.b64encode(f"{config['account_sid']}:{config['auth_token']}".encode()).decode()
    headers = {
        "Authorization": f"Basic {credentials}",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    to = number(channel, request)
    if not config_flag(channel, "use_national") and not to.startswith("+") and to.isdigit():
        to = "+" + to
    callback = status_url(ctx, AGGREGATOR, channel.uuid, request.id)
    out = []
    for index, text in enumerate(parts(channel, request.text, DEFAULT_MAX_LENGTH)):
        form: list[tuple[str, str]] = [("To", to)]
        if channel.address:
            form.append(("From", channel.address))
        form += [("Body", text), ("StatusCallback", callback)]
        if config.get("messaging_service_sid"):
            form.append(("MessagingServiceSid", str(config["messaging_service_sid"])))
        if index == 0:
            form += [("MediaUrl", attachment_url(a)) for a in request.attachments]
        out.append(OutgoingRequest("POST", url, dict(headers), urlencode(form).encode()))
    return out


def interpret(channel, response: httpx.Response) -> Outcome:
    data = json_of(response)
    if 200 <= response.status_code < 300:
        sid = data.get("sid") if isinstance(data, dict) else None
        if isinstance(sid, str) and sid:
            return Outcome("wired", external_id=sid, external_ids=(sid,))
        return Outcome("failed", code="response_content", message="answer has no message sid")
    if not isinstance(data, dict) or data.get("code") in (None, ""):
        return shared_outcome(response)
    code, text = data["code"], str(data.get("message") or "")
    if response.status_code == 429 or str(code) == "20429":
        return Outcome("errored", code="connection_throttled", message=f"twilio {code}: {text}")
    if response.status_code >= 500:
        return Outcome("errored", code="connection_failed", message=f"twilio {code}: {text}")
    return Outcome("failed", code=f"twilio_{code}", message=text)


# --- callbacks -------------------------------------------------------------------------


def signature(auth_token: str, url: str, form: dict[str, list[str]]) -> str:
    """base64(HMAC-SHA1(auth_token, url + name + value for each sorted name and value)).

    Like Twilio's helper libraries, a value repeated under one name counts once.
    """
    data = url
    for name in sorted(form):
        for value in sorted(set(form[name])):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """`url` as received, plus the same with the scheme's default port added or removed:
    Twilio does not always sign the port the way the request shows it."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if default is None or parts.hostname is None:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = userinfo + "@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is None:
        other = prefix + f"{host}:{default}"
    elif port == default:
        other = prefix + host
    else:
        return [url]
    return [url, urlunsplit((parts.scheme, other, parts.path, parts.query, parts.fragment))]


def check_signature(channel, request: CallbackRequest) -> Rejected | None:
    """None when the request is signed by this channel's auth token (or checks are off)."""
    if not config_flag(channel, "validate_signature", True):
        return None
    given = request.header("X-Twilio-Signature")
    if not given:
        return Rejected(403, "missing request signature")
    token = str(channel.config.get("auth_token", ""))
    for url in url_variants(request.url):
        if hmac.compare_digest(signature(token, url, request.form).encode(), given.strip().encode()):
            return None
    return Rejected(403, "invalid request signature")


def parse_receive(channel, request: CallbackRequest) -> CallbackResult:
    rejected = check_signature(channel, request) or first_missing(request.params, "MessageSid", "From")
    if rejected:
        return rejected
    params = request.params
    attachments = []
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        return Rejected(400, "field 'NumMedia' must be a number")
    for i in range(max(count, 0)):
        url = params.get(f"MediaUrl{i}")
        if url:
            kind = params.get(f"MediaContentType{i}") or "application/octet-stream"
            attachments.append(f"{kind}:{url}")
    return [
        Incoming(
            sender=params["From"],
            text=params.get("Body", ""),
            external_id=params["MessageSid"],
            attachments=tuple(attachments),
        )
    ]


def parse_status(channel, request: CallbackRequest) -> CallbackResult:
    rejected = check_signature(channel, request) or first_missing(request.params, "MessageSid", "MessageStatus")
    if rejected:
        return rejected
    params = request.params
    detail = f"ErrorCode {params['ErrorCode']}" if params.get("ErrorCode") else ""
    return delivery_report(
        STATUS_MAP, params["MessageStatus"], external_id=params["MessageSid"], msg_id=request.query.get("id"), detail=detail
    )

CALLBACKS = {"receive": parse_receive, "status": parse_status}
ADAPTER = RestAdapter(AGGREGATOR, build, interpret, CALLBACKS, RECEIVE_ANSWER)
