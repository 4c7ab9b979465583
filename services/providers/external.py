"""The External API channel (RapidPro's `EX`) as a provider: the requests to its `send_url` and what its answers mean.

CONTRACT section 7 "Send", after courier's handlers/external: one request per part to the
channel's `send_url`, with its method, content type, body template and headers, variables
escaped for where they stand (templates.py) and the text split and smart-encoded as courier
does (text.py). Everything else (de-duplication, SSRF guard, TPS, retries, statuses, channel
logs) is the shared sender's (services/outbound/sender.py); the worker is services/outbound/external.py.
"""

from __future__ import annotations

import httpx
import phonenumbers

from ..core.channels import ExternalChannel
from ..core.models import SendRequest, split_urn
from .adapter import Outcome, OutgoingRequest, SendContext, shared_outcome
from .templates import body_place, content_type_header, render
from .text import smart_encode, split_text, text_with_attachments

TRANSPORT = "external"
DEFAULT_JSON_BODY = (
    '{"id": {{id}}, "text": {{text}}, "to": {{to}}, "to_no_plus": {{to_no_plus}}, "from": {{from}}, '
    '"from_no_plus": {{from_no_plus}}, "channel": {{channel}}}'
)
DEFAULT_FORM_BODY = (
    "id={{id}}&text={{text}}&to={{to}}&to_no_plus={{to_no_plus}}&from={{from}}&from_no_plus={{from_no_plus}}&channel={{channel}}"
)
_METHODS_WITH_BODY = ("POST", "PUT")


def national_number(number: str, country: str | None) -> str:
    """The national significant number of `number` for `country` (courier's ToLocalPhone:
    `+250788383383` in RW -> `788383383`); the number unchanged when it does not parse."""
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return number
    return str(parsed.national_number)


def template_values(channel: ExternalChannel, request: SendRequest) -> dict[str, object]:
    """Every variable of CONTRACT section 7 but `text` (per part) and `quick_replies` (per place)."""
    scheme, to = split_urn(request.to)
    to_no_plus = to.removeprefix("+")
    if channel.config.use_national and scheme == "tel":
        to = to_no_plus = national_number(to, channel.country)
    return {
        "id": request.id,
        "uuid": request.uuid or "",
        "to": to,
        "to_no_plus": to_no_plus,
        "from": channel.address,
        "from_no_plus": channel.address.removeprefix("+"),
        "channel": channel.id if channel.id is not None else channel.uuid,
        "session_status": request.session_status,
    }


def request_headers(channel: ExternalChannel) -> dict[str, str]:
    """Content-Type, then `send_authorization`, then the configured headers, which win."""
    config = channel.config
    headers = {"Content-Type": content_type_header(config.content_type)}
    if config.send_authorization:
        headers["Authorization"] = config.send_authorization
    headers.update(config.headers)
    return headers


class ExternalAdapter:
    """Builds the provider requests of an external channel and judges its answers."""

    transport = TRANSPORT

    def build(self, channel: ExternalChannel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
        config = channel.config
        parts = split_text(text_with_attachments(request.text, request.attachments), config.max_length)
        values = template_values(channel, request)
        headers = request_headers(channel)
        with_body = config.method in _METHODS_WITH_BODY
        place = body_place(config.content_type)
        body = config.body or (DEFAULT_JSON_BODY if config.content_type == "json" else DEFAULT_FORM_BODY)
        requests = []
        for index, part in enumerate(parts):
            values["text"] = smart_encode(part) if config.encoding == "smart" else part
            replies = request.quick_replies if index == len(parts) - 1 else ()
            content = render(body, values, place, replies).encode("utf-8") if with_body else None
            url = render(config.send_url, values, "url", replies)
            requests.append(OutgoingRequest(config.method, url, headers, content))
        return requests

    def interpret(self, channel: ExternalChannel, response: httpx.Response) -> Outcome:
        shared = shared_outcome(response)
        if shared is not None:
            return shared
        check = channel.config.mt_response_check
        if check and check.encode("utf-8") not in response.content:  # bytes, as courier compares
            return Outcome("failed", code="response_content", message=f"response does not contain {check!r}")
        return Outcome("wired")
