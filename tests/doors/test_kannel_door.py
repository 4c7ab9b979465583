"""The Kannel door against courier's KN requests, byte for byte (CONTRACT section 10).

Each row is the query string courier's KN handler builds (Go's `url.Values.Encode`: keys
sorted, `QueryEscape`d), sent over real HTTP to the edge; the answer must be Kannel's, and an
accepted request must reach `sms.outbound` as the SendRequest it means, its `dlr-url` and
`dlr-mask` stored with it.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx
import orjson
import pytest

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.inbound.app import create_app
from services.inbound.edge import Edge
from tests.helpers import Tap
from tests.inbound.proxy import TcpProxy

from .rig import KN_PASSWORD, KN_USER

UTF16 = "utf-16-be"


def go_encode(params: dict[str, str | bytes]) -> bytes:
    """Go's url.Values.Encode: keys sorted, keys and values QueryEscape'd (space as +)."""
    return "&".join(f"{quote_plus(k)}={quote_plus(params[k])}" for k in sorted(params)).encode()


def courier(rig, text: str | bytes, *, to: str = "+250788383383", mask: str = "27", msg_id: int = 10, **extra) -> dict:
    """What courier's KN handler sends for one message (dlr-url with `id=`, as older versions)."""
    params = {"username": KN_USER, "password": KN_PASSWORD, "from": "2020", "to": to, "text": text,
              "dlr-url": rig.dlr_url(msg_id), "dlr-mask": mask}  # fmt: skip
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


ROWS = [
    # id, params (rig -> dict), query prefix from the send_url, status, body, expected SendRequest fields
    ("plain", lambda r: courier(r, "Simple Message"), "", 202, "0: Accepted for delivery",
     {"text": "Simple Message", "to": "+250788383383", "high_priority": False}),
    ("unicode, coding=2, UTF-16BE without charset (current courier)",
     lambda r: courier(r, "Unicode ☺ ünïcödé".encode(UTF16), coding="2"), "", 202, "0: Accepted for delivery",
     {"text": "Unicode ☺ ünïcödé"}),
    ("unicode, charset=utf8", lambda r: courier(r, "Unicode ☺", coding="2", charset="utf8"), "", 202,
     "0: Accepted for delivery", {"text": "Unicode ☺"}),
    ("unicode, charset=utf-8", lambda r: courier(r, "Unicode ☺ 2", coding="2", charset="utf-8"), "", 202,
     "0: Accepted for delivery", {"text": "Unicode ☺ 2"}),
    ("unicode, charset=UTF-16BE", lambda r: courier(r, "Unicode ☺ 3".encode(UTF16), coding="2", charset="UTF-16BE"), "", 202,
     "0: Accepted for delivery", {"text": "Unicode ☺ 3"}),
    ("smart quotes", lambda r: courier(r, "“Hi” ‘there’ – ok…".encode(UTF16), coding="2"), "", 202,
     "0: Accepted for delivery", {"text": "“Hi” ‘there’ – ok…"}),
    ("attachment line", lambda r: courier(r, "My pic!\nhttps://foo.bar/image.jpg"), "", 202, "0: Accepted for delivery",
     {"text": "My pic!\nhttps://foo.bar/image.jpg"}),
    ("high priority", lambda r: courier(r, "Urgent", priority="1"), "", 202, "0: Accepted for delivery",
     {"text": "Urgent", "high_priority": True}),
    ("send_url with its own query (smsc=second)", lambda r: courier(r, "Via second"), "smsc=second&account=rp", 202,
     "0: Accepted for delivery", {"text": "Via second", "channel": "channel_2"}),
    ("national number, dlr-mask=3", lambda r: courier(r, "National", to="0788383383", mask="3"), "", 202,
     "0: Accepted for delivery", {"text": "National", "to": "+250788383383", "mask": 3}),
    ("user/pass and dlrurl/dlrmask aliases",
     lambda r: {"user": KN_USER, "pass": KN_PASSWORD, "to": "+250788383383", "text": "Aliases", "dlrurl": r.dlr_url(11),
                "dlrmask": "1"}, "", 202, "0: Accepted for delivery", {"text": "Aliases", "mask": 1}),
    ("bad credentials", lambda r: courier(r, "Hi", password="wrong-password"), "", 403, "Authorization failed for sendsms", None),
    ("no credentials", lambda r: {"to": "+250788383383", "text": "Hi"}, "", 403, "Authorization failed for sendsms", None),
    ("missing to", lambda r: courier(r, "Hi", to=None), "", 400, "Missing receiver number, rejected", None),
    ("empty to", lambda r: courier(r, "Hi", to=""), "", 400, "Empty receiver number not allowed, rejected", None),
    ("letters in to", lambda r: courier(r, "Hi", to="Nyaruka"), "", 400, "To field misformed, rejected", None),
    ("bad dlr-mask (64)", lambda r: courier(r, "Hi", mask="64"), "", 400, "Dlr-mask field misformed, rejected", None),
    ("bad dlr-mask (text)", lambda r: courier(r, "Hi", mask="all"), "", 400, "Dlr-mask field misformed, rejected", None),
    ("bad priority", lambda r: courier(r, "Hi", priority="9"), "", 400, "Priority field misformed, rejected", None),
    ("odd UTF-16BE bytes", lambda r: courier(r, b"\x00H\x00", coding="2"), "", 400, "Charset or body misformed, rejected", None),
    ("unknown charset", lambda r: courier(r, "Hi", charset="klingon-8"), "", 400, "Charset or body misformed, rejected", None),
    ("four parts with max_parts 3", lambda r: courier(r, "x" * 153 * 3 + "y"), "", 400,
     "Message too long (4 parts, at most 3), rejected", None),
]


@pytest.mark.parametrize("name, params, prefix, status, body, expected", ROWS, ids=[row[0] for row in ROWS])
async def test_courier_kn_requests(rig, http, amqp, redis_client, settings, name, params, prefix, status, body, expected):
    tap = await Tap.open(amqp, settings, "sms.outbound", "send.#")
    try:
        query = go_encode(params(rig))
        target = "/cgi-bin/sendsms?" + (prefix + "&" if prefix else "") + query.decode()
        answer = await http.get(target)
        assert (answer.status_code, answer.text) == (status, body)
        assert answer.headers["content-type"].startswith("text/html")
        if expected is None:
            await asyncio.sleep(0.2)
            assert tap.messages == []
            return
        (message,) = await tap.wait(1)
        request = message.body
        channel = rig.channel_2 if expected.get("channel") == "channel_2" else rig.channel
        assert message.routing_key == f"send.{channel}" and request["channel_uuid"] == channel
        for key in ("text", "to", "high_priority"):
            if key in expected:
                assert request[key] == expected[key], key
        record = orjson.loads(await redis_client.hget(settings.name(f"door:{request['id']}"), "d"))
        sent = params(rig)
        assert record["url"] == sent.get("dlr-url", sent.get("dlrurl"))  # stored as sent, opaque
        assert record["mask"] == expected.get("mask", 27)
    finally:
        await tap.close()


async def test_post_form_and_a_stale_channel(rig, http, amqp, settings):
    """POST with a form body is read like the query; a door whose channel left the file is not routable."""
    answer = await http.post("/cgi-bin/sendsms", content=go_encode(courier(rig, "Posted")),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert (answer.status_code, answer.text) == (202, "0: Accepted for delivery")
    assert (await http.put("/cgi-bin/sendsms")).status_code == 405
    registry = parse_channels(rig.channels_file.read_text(), "channels.yaml")
    registry.channels.pop(rig.channel)
    edge = Edge(Runtime("inbound-stale", Settings(), registry))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(edge)), base_url="http://edge") as client:
        stale = await client.get("/cgi-bin/sendsms?" + go_encode(courier(rig, "Nowhere")).decode())
    assert (stale.status_code, stale.text) == (403, "Not routable. Do not try again.")


async def test_broker_gone_answers_503_never_429(rig, rabbitmq_url):
    target = urlsplit(rabbitmq_url)
    proxy = await TcpProxy(target.hostname, target.port or 5672).start()
    netloc = f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"
    url = urlunsplit((target.scheme, netloc, target.path or "/", "reconnect_interval=0.2", ""))
    registry = parse_channels(rig.channels_file.read_text(), "channels.yaml")
    edge = Edge(Runtime("inbound-door-outage", Settings(RABBITMQ_URL=url), registry), publish_timeout=1.0)
    await edge.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(edge)), base_url="http://edge") as client:
            query = go_encode(courier(rig, "Before")).decode()
            assert (await client.get("/cgi-bin/sendsms?" + query)).status_code == 202
            await proxy.stop()
            answers = []
            for _ in range(3):
                answers.append(await client.get("/cgi-bin/sendsms?" + query))
                await asyncio.sleep(0.2)
            assert {(a.status_code, a.text) for a in answers[1:]} == {(503, "Temporal failure, try again later.")}
    finally:
        await asyncio.wait_for(edge.close(timeout=1), 10)
        await proxy.stop()


async def test_redis_gone_answers_503(rig):
    """The dlr-url cannot be stored: nothing is published, RapidPro tries again later."""
    registry = parse_channels(rig.channels_file.read_text(), "channels.yaml")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    edge = Edge(Runtime("inbound-door-noredis", Settings(REDIS_URL=f"redis://127.0.0.1:{dead_port}/0"), registry))
    await edge.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(edge)), base_url="http://edge") as client:
            answer = await client.get("/cgi-bin/sendsms?" + go_encode(courier(rig, "No store")).decode())
        assert (answer.status_code, answer.text) == (503, "Temporal failure, try again later.")
    finally:
        await edge.close()
