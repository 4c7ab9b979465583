"""Helpers for the adapter tables (`*_test.py` beside each adapter): channels, requests,
answers and callbacks built in one line each, so that every table row reads as data."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson

from ..core.channels import RestChannel
from ..core.models import SendRequest
from ..core.settings import Settings
from .adapter import SendContext
from .base import CallbackRequest

CHANNEL_UUID = "8a9cbe5f-2d2b-4a6e-9c65-0c8c3c5b1f11"
PUBLIC = "https://sb.example"
CTX = SendContext(Settings(SWITCHBOARD_PUBLIC_URL=PUBLIC + "/"))


def channel(aggregator: str, config: dict[str, Any], **fields: Any) -> RestChannel:
    return RestChannel(uuid=CHANNEL_UUID, type="rest", aggregator=aggregator, config=config, **fields)


def send(text: str = "Hello world", **fields: Any) -> SendRequest:
    values = {"id": 1241244, "channel_uuid": CHANNEL_UUID, "to": "+250788123123", "text": text, **fields}
    return SendRequest(**values)


def answer(status: int, body: Any = None, text: str | None = None) -> httpx.Response:
    """A provider answer: JSON when `body` is given, else `text` as text/plain."""
    if body is not None:
        return httpx.Response(status, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
    return httpx.Response(status, text=text or "")


def form(content: bytes | None) -> list[tuple[str, str]]:
    return parse_qsl((content or b"").decode(), keep_blank_values=True)


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def callback(
    action: str,
    aggregator: str,
    body: dict[str, str] | None = None,
    query_params: dict[str, str] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> CallbackRequest:
    """A callback as the inbound edge hands it over: flat params (body wins over the query)."""
    query_params = query_params or {}
    body = body or {}
    url = f"{PUBLIC}/c/{aggregator}/{CHANNEL_UUID}/{action}"
    if query_params:
        url += "?" + urlencode(query_params)
    flat = {**query_params, **body}
    if isinstance(json_body, dict):
        flat.update({k: v for k, v in json_body.items() if isinstance(v, str)})
    return CallbackRequest(
        params=flat,
        query=dict(query_params),
        form={k: [v] for k, v in body.items()},
        json=json_body,
        headers=headers or {},
        url=url,
    )
