"""A provider with no code of its own, defined entirely by channel config (REST_ADAPTERS.md 9.7).

The request is an external channel's (CONTRACT section 7: `send_url` and body templates,
method, content type, headers, splitting, smart encoding), so it is built by the external
adapter itself from the same config; what `generic` adds is authentication, and a richer
reading of the answer: which statuses mean accepted, where the message id is, and how an
error looks. Its callbacks are the `/c/ex/` ones, served by the inbound edge with
`transport` `rest.generic`.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from ..core.channels import ExternalChannel, ExternalConfig, generic_auth_problem
from ..core.models import SendRequest
from .adapter import ChannelConfigError, Outcome, OutgoingRequest, SendContext
from .base import RestAdapter, json_of
from .external import ExternalAdapter
from .templates import query_escape

AGGREGATOR = "generic"
#: the section 7 keys `generic` shares with external channels (and their defaults)
EXTERNAL_KEYS = ("send_url", "method", "content_type", "body", "headers", "max_length", "encoding", "mt_response_check", "use_national")

_external = ExternalAdapter()
_views: dict[int, tuple[Any, ExternalChannel]] = {}


def external_view(channel) -> ExternalChannel:
    """The channel as the external adapter sees it: section 7 config, with `auth` turned into
    `send_authorization` or a first header (so the configured `headers` still win).
    Cached per channel object: a reload brings new objects."""
    cached = _views.get(id(channel))
    if cached is not None and cached[0] is channel:
        return cached[1]
    config = channel.config
    problem = generic_auth_problem(config.get("auth"))
    if problem:
        raise ChannelConfigError(f"config.auth: {problem}")
    values = {key: config[key] for key in EXTERNAL_KEYS if config.get(key) is not None}
    auth = config.get("auth") or {}
    if auth.get("type") == "basic":
        pair = f"{auth['username']}:{auth['password']}".encode()
        values["send_authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif auth.get("type") == "bearer":
        values["send_authorization"] = f"Bearer {auth['token']}"
    elif auth.get("type") == "header":
        values["headers"] = {str(auth["name"]): str(auth["value"]), **(values.get("headers") or {})}
    try:
        view = ExternalChannel(
            uuid=channel.uuid,
            name=channel.name,
            id=channel.id,
            address=channel.address,
            country=channel.country,
            schemes=channel.schemes,
            type="external",
            config=ExternalConfig(**values),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ChannelConfigError(f"config.{'.'.join(str(p) for p in first['loc'][-1:])}: {first['msg']}") from None
    _views[id(channel)] = (channel, view)
    return view


def with_query(url: str, name: str, value: str) -> str:
    """`url` with `name=value` (query-escaped) appended to its query."""
    parts = urlsplit(url)
    pair = f"{query_escape(name)}={query_escape(value)}"
    query = f"{parts.query}&{pair}" if parts.query else pair
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def build(channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
    requests = _external.build(external_view(channel), request, ctx)
    auth = channel.config.get("auth") or {}
    if auth.get("type") != "query":
        return requests
    name, value = str(auth["name"]), str(auth["value"])
    return [OutgoingRequest(r.method, with_query(r.url, name, value), r.headers, r.content) for r in requests]


def lookup(data: Any, path: str) -> Any:
    """The value at dotted `path` (a digits segment indexes a list), or None."""
    for segment in path.split("."):
        if isinstance(data, dict):
            data = data.get(segment)
        elif isinstance(data, list) and segment.isdigit() and int(segment) < len(data):
            data = data[int(segment)]
        else:
            return None
    return data


def scalar(value: Any) -> str | None:
    """A string, or a number written as decimal; anything else (objects, booleans) is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, "f").rstrip("0")
    return None


def success_statuses(channel) -> set[int] | None:
    value = channel.config.get("success_status")
    if value in (None, "", []):
        return None
    values = value if isinstance(value, list) else [value]
    try:
        return {int(v) for v in values}
    except (TypeError, ValueError):
        raise ChannelConfigError(f"config.success_status must be a list of HTTP statuses, got {value!r}") from None


def _error_code(channel, response: httpx.Response, fallback: str) -> str:
    path = channel.config.get("error_code_path")
    if path:
        value = scalar(lookup(json_of(response), str(path)))
        if value is not None:
            return f"generic_{value}"
    return fallback


def interpret(channel, response: httpx.Response) -> Outcome:
    status = response.status_code
    if status >= 500:
        return Outcome("errored", code="connection_failed", message=f"HTTP {status}")
    if status == 429:
        return Outcome("errored", code="connection_throttled", message=f"HTTP {status}")
    accepted = success_statuses(channel)
    if not (status in accepted if accepted is not None else 200 <= status < 300):
        return Outcome("failed", code=_error_code(channel, response, "response_status"), message=f"HTTP {status}")
    config = channel.config
    match = config.get("error_match")
    if match and str(match).encode() in response.content:
        return Outcome(
            "failed", code=_error_code(channel, response, "response_content"), message=f"response contains {str(match)!r}"
        )
    check = config.get("mt_response_check")
    if check and str(check).encode() not in response.content:
        return Outcome("failed", code="response_content", message=f"response does not contain {str(check)!r}")
    external_id = scalar(lookup(json_of(response), str(config["id_path"]))) if config.get("id_path") else None
    return Outcome("wired", external_id=external_id, external_ids=(external_id,) if external_id else ())


ADAPTER = RestAdapter(AGGREGATOR, build, interpret, {})
