"""REST aggregator callbacks through the real inbound edge and the real broker (REST_ADAPTERS.md 9).

The edge's ASGI app runs in-process over a started Edge (real RabbitMQ publisher, real
Redis); every request is made with httpx against it, and what it published is read back from
`sms.inbound` and `sms.status` by schema-checking taps.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest
import yaml

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.inbound.app import create_app
from services.inbound.edge import Edge
from services.providers import twilio
from tests.helpers import Tap

PUBLIC = "https://sb.example"
TOKEN = "tw-cb-token-1"
CHANNELS = {
    "twilio": {"aggregator": "twilio", "address": "+15005550006", "config": {"account_sid": "AC1", "auth_token": TOKEN}},
    "vonage": {"aggregator": "vonage", "config": {"api_key": "k", "api_secret": "vn-cb-secret"}},
    "infobip": {"aggregator": "infobip", "config": {"api_key": "ib-cb-key"}},
    "africastalking": {"aggregator": "africastalking", "country": "KE", "config": {"username": "sandbox", "api_key": "at-cb-key"}},
    "kannel": {"aggregator": "kannel", "country": "RW", "config": {"base_url": "http://k:13013", "username": "u", "password": "kn-cb-pass"}},
    "generic": {"aggregator": "generic", "config": {"send_url": "http://g/send"}},
}
UUIDS = {name: str(uuid.uuid4()) for name in CHANNELS}


class Edge_:
    """The running edge, an HTTP client on it and taps on what it publishes."""

    def __init__(self, client: httpx.AsyncClient, inbound: Tap, status: Tap, runtime: Runtime):
        self.client, self.inbound, self.status, self.runtime = client, inbound, status, runtime

    async def post(self, aggregator: str, action: str, *, signed: bool = False, query: str = "", **kwargs) -> httpx.Response:
        path = f"/c/{aggregator}/{UUIDS[aggregator]}/{action}" + (f"?{query}" if query else "")
        headers = kwargs.pop("headers", {})
        if signed:
            form = {k: [v] for k, v in kwargs.get("data", {}).items()}
            headers["X-Twilio-Signature"] = twilio.signature(TOKEN, PUBLIC + path, form)
        return await self.client.post(path, headers=headers, **kwargs)

    async def statuses(self, external_id: str, count: int = 1) -> list[dict]:
        found = await self.status.wait(count, timeout=10, where=lambda m: m.body.get("external_id") == external_id)
        return [m.body for m in found]


@pytest.fixture(scope="module")
async def edge():
    settings = Settings(SWITCHBOARD_PUBLIC_URL=PUBLIC + "/")
    channels = [{"uuid": UUIDS[name], "type": "rest", **spec} for name, spec in CHANNELS.items()]
    runtime = Runtime("inbound-rest-test", settings, parse_channels(yaml.safe_dump({"channels": channels})))
    the_edge = Edge(runtime)
    await the_edge.start()
    inbound = await Tap.open(runtime.connection, settings, "sms.inbound", "#")
    status = await Tap.open(runtime.connection, settings, "sms.status", "#")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(the_edge)), base_url=PUBLIC, timeout=10)
    yield Edge_(client, inbound, status, runtime)
    await client.aclose()
    await inbound.close()
    await status.close()
    await the_edge.close()


async def seed(edge: Edge_, aggregator: str, external_id: str, msg_id, msg_uuid=None) -> None:
    """The `ext:` record the sender writes when the provider accepted a message."""
    key = edge.runtime.key(f"ext:{UUIDS[aggregator]}:{external_id}")
    await edge.runtime.redis.set(key, orjson.dumps({"id": msg_id, "uuid": msg_uuid}), ex=60)


# --- incoming messages -----------------------------------------------------------------


async def test_twilio_receive_publishes_and_answers_empty_twiml(edge):
    data = {"MessageSid": "SMin1", "From": "+250788123123", "To": "+15005550006", "Body": "Muraho", "NumMedia": "1",
            "MediaUrl0": "https://m.example/0", "MediaContentType0": "image/png"}  # fmt: skip
    response = await edge.post("twilio", "receive", signed=True, data=data)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml"
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [message] = await edge.inbound.wait(where=lambda m: m.body["external_id"] == "SMin1")
    assert message.routing_key == f"msg.{UUIDS['twilio']}"
    body = message.body
    assert (body["urn"], body["from"], body["text"], body["transport"]) == ("tel:+250788123123", "+250788123123", "Muraho", "rest.twilio")
    assert body["attachments"] == ["image/png:https://m.example/0"]


RECEIVES = [
    # aggregator, request kwargs, expected (urn, text, external_id, received_on or None)
    ("vonage", {"data": {"msisdn": "447700900000", "to": "1", "messageId": "VNin1", "text": "Hi", "message-timestamp": "2020-01-01 12:00:00"}},
     ("tel:+447700900000", "Hi", "VNin1", "2020-01-01T12:00:00.000Z")),
    ("vonage", {"json": {"msisdn": "447700900000", "messageId": "VNin2", "text": "json"}}, ("tel:+447700900000", "json", "VNin2", None)),
    ("africastalking", {"data": {"from": "+254711000000", "to": "20880", "text": "Habari", "date": "2017-05-03T06:04:45Z", "id": "ATin1"}},
     ("tel:+254711000000", "Habari", "ATin1", "2017-05-03T06:04:45.000Z")),
    ("kannel", {"params": {"sender": "0788123123", "to": "1234", "message": "Muraho 👋", "ts": "1700000000", "id": "KNin1"}},
     ("tel:+250788123123", "Muraho 👋", "KNin1", "2023-11-14T22:13:20.000Z")),
]  # fmt: skip


@pytest.mark.parametrize("aggregator,kwargs,expected", RECEIVES, ids=[f"{r[0]}-{r[2][2]}" for r in RECEIVES])
async def test_receive(edge, aggregator, kwargs, expected):
    if "params" in kwargs:  # Kannel's get-url
        response = await edge.client.get(f"/c/{aggregator}/{UUIDS[aggregator]}/receive", params=kwargs["params"])
    else:
        response = await edge.post(aggregator, "receive", **kwargs)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["message"] == "Message Accepted"
    urn, text, external_id, received_on = expected
    [message] = await edge.inbound.wait(where=lambda m: m.body["external_id"] == external_id)
    body = message.body
    assert (body["urn"], body["text"], body["transport"], body["channel_uuid"]) == (urn, text, f"rest.{aggregator}", UUIDS[aggregator])
    if received_on:
        assert body["received_on"] == received_on
    assert answer["data"][0]["msg_uuid"] == body["uuid"]


async def test_infobip_push_publishes_one_message_per_result(edge):
    push = {"results": [{"messageId": "IBin1", "from": "385916242493", "to": "1", "text": "one", "receivedAt": "2019-11-09T16:00:00.000+0000"},
                        {"messageId": "IBin2", "from": "385916242494", "to": "1", "text": "two"}],
            "messageCount": 2, "pendingMessageCount": 0}  # fmt: skip
    response = await edge.post("infobip", "receive", json=push)
    assert response.status_code == 200 and len(response.json()["data"]) == 2
    found = await edge.inbound.wait(2, where=lambda m: m.body["external_id"] in ("IBin1", "IBin2"))
    assert sorted(m.body["text"] for m in found) == ["one", "two"]
    assert {m.body["urn"] for m in found} == {"tel:+385916242493", "tel:+385916242494"}


# --- delivery reports ------------------------------------------------------------------

REPORTS = [
    # aggregator, request kwargs (external id inside), external id, expected status, expected error code
    ("twilio", {"signed": True, "data": {"MessageSid": "SMst1", "MessageStatus": "delivered"}}, "SMst1", "delivered", None),
    ("twilio", {"signed": True, "data": {"MessageSid": "SMst2", "MessageStatus": "sent"}}, "SMst2", "sent", None),
    ("twilio", {"signed": True, "data": {"MessageSid": "SMst3", "MessageStatus": "undelivered", "ErrorCode": "30003"}}, "SMst3", "failed", "dlr_undelivered"),
    ("vonage", {"data": {"messageId": "VNst1", "status": "delivered"}}, "VNst1", "delivered", None),
    ("vonage", {"data": {"messageId": "VNst2", "status": "buffered"}}, "VNst2", "sent", None),
    ("vonage", {"data": {"messageId": "VNst3", "status": "rejected", "err-code": "6"}}, "VNst3", "failed", "dlr_rejected"),
    ("infobip", {"json": {"results": [{"messageId": "IBst1", "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}}]}}, "IBst1", "delivered", None),
    ("infobip", {"json": {"results": [{"messageId": "IBst2", "status": {"groupName": "PENDING", "name": "PENDING_ENROUTE"}}]}}, "IBst2", "sent", None),
    ("infobip", {"json": {"results": [{"messageId": "IBst3", "status": {"groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED"},
                                       "error": {"name": "EC_ABSENT_SUBSCRIBER"}}]}}, "IBst3", "failed", "dlr_UNDELIVERABLE"),
    ("africastalking", {"data": {"id": "ATst1", "status": "Success"}}, "ATst1", "delivered", None),
    ("africastalking", {"data": {"id": "ATst2", "status": "Sent"}}, "ATst2", "sent", None),
    ("africastalking", {"data": {"id": "ATst3", "status": "Failed", "failureReason": "UserInBlacklist"}}, "ATst3", "failed", "dlr_Failed"),
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(REPORTS)), ids=[r[2] for r in REPORTS])
async def test_report_correlated_through_the_ext_record(edge, index):
    aggregator, kwargs, external_id, status, code = REPORTS[index]
    await seed(edge, aggregator, external_id, 9000 + index)
    response = await edge.post(aggregator, "status", **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Status Update Accepted"
    [update] = await edge.statuses(external_id)
    assert (update["id"], update["uuid"], update["status"], update["transport"]) == (9000 + index, None, status, f"rest.{aggregator}")
    assert (update["error"] or {}).get("code") == code


async def test_report_for_an_unknown_external_id_carries_only_that_id(edge):
    response = await edge.post("vonage", "status", data={"messageId": "VNunknown", "status": "delivered"})
    assert response.status_code == 200
    [update] = await edge.statuses("VNunknown")
    assert (update["id"], update["uuid"], update["external_id"], update["status"]) == (None, None, "VNunknown", "delivered")


async def test_report_falls_back_to_the_id_of_our_callback_url(edge):
    uuid_id = "0191e180-7d60-7000-aded-7d8b151cbd5b"
    response = await edge.post("twilio", "status", signed=True, query=f"id={uuid_id}",
                               data={"MessageSid": "SMfallback", "MessageStatus": "read"})  # fmt: skip
    assert response.status_code == 200
    [update] = await edge.statuses("SMfallback")
    assert (update["id"], update["uuid"], update["status"]) == (None, uuid_id, "delivered")


@pytest.mark.parametrize("value,status,code", [("1", "delivered", None), ("8", "sent", None), ("16", "failed", "dlr_16")])
async def test_kannel_dlr_url(edge, value, status, code):
    msg_id = 31000 + int(value)
    response = await edge.client.get(f"/c/kannel/{UUIDS['kannel']}/status", params={"id": str(msg_id), "status": value})
    assert response.status_code == 200
    [message] = await edge.status.wait(where=lambda m: m.body["id"] == msg_id)
    assert (message.body["status"], message.body["external_id"], (message.body["error"] or {}).get("code")) == (status, None, code)


async def test_generic_routes_are_the_external_ones_with_external_id(edge):
    await seed(edge, "generic", "GNst1", 4242)
    response = await edge.post("generic", "delivered", data={"external_id": "GNst1"})
    assert response.status_code == 200 and response.json()["data"][0]["status"] == "D"
    [update] = await edge.statuses("GNst1")
    assert (update["id"], update["transport"]) == (4242, "rest.generic")
    response = await edge.post("generic", "receive", data={"from": "+250788123123", "text": "generic in"})
    assert response.status_code == 200
    [message] = await edge.inbound.wait(where=lambda m: m.body["text"] == "generic in")
    assert message.body["transport"] == "rest.generic"
    response = await edge.post("generic", "sent", data={})
    assert response.status_code == 400
    assert response.json()["data"][0]["error"] == "parameters id, uuid or external_id should not be empty"


# --- refused callbacks -----------------------------------------------------------------

REFUSED = [
    # label, aggregator, action, request kwargs, status, reason
    ("twilio missing signature", "twilio", "receive", {"data": {"MessageSid": "SMx1", "From": "+250788123123"}}, 403, "missing request signature"),
    ("twilio bad signature", "twilio", "status", {"data": {"MessageSid": "SMx2", "MessageStatus": "sent"}, "headers": {"X-Twilio-Signature": "AAAA"}},
     403, "invalid request signature"),
    ("twilio signed for another URL", "twilio", "status", {"signed": True, "query": "id=5", "data": {"MessageSid": "SMx3", "MessageStatus": "sent"}},
     403, "invalid request signature"),
    ("twilio missing field", "twilio", "status", {"signed": True, "data": {"MessageSid": "SMx4"}}, 400, "field 'MessageStatus' required"),
    ("vonage missing msisdn", "vonage", "receive", {"data": {"messageId": "VNx1", "text": "x"}}, 400, "field 'msisdn' required"),
    ("vonage bad date", "vonage", "receive", {"data": {"msisdn": "447700900000", "messageId": "VNx2", "message-timestamp": "yesterday"}},
     400, "invalid date format"),
    ("infobip no results", "infobip", "status", {"json": {"foo": []}}, 400, "field 'results' required"),
    ("infobip not json", "infobip", "receive", {"content": b"{oops", "headers": {"Content-Type": "application/json"}}, 400,
     "invalid request: body is not valid JSON"),
    ("africastalking missing status", "africastalking", "status", {"data": {"id": "ATx1"}}, 400, "field 'status' required"),
    ("kannel missing sender", "kannel", "receive", {"data": {"message": "x"}}, 400, "field 'sender' required"),
    ("kannel bad number", "kannel", "receive", {"data": {"sender": "+1", "message": "x"}}, 400, None),
]  # fmt: skip


@pytest.mark.parametrize("label,aggregator,action,kwargs,status,reason", REFUSED, ids=[r[0] for r in REFUSED])
async def test_refused_callbacks_publish_nothing(edge, label, aggregator, action, kwargs, status, reason):
    if label == "twilio signed for another URL":  # signed without the query the request carries
        path = f"/c/twilio/{UUIDS['twilio']}/status"
        signature = twilio.signature(TOKEN, PUBLIC + path, {k: [v] for k, v in kwargs["data"].items()})
        response = await edge.client.post(path + "?id=5", data=kwargs["data"], headers={"X-Twilio-Signature": signature})
    else:
        response = await edge.post(aggregator, action, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["message"] == "Error"
    if reason:
        assert body["data"][0]["error"] == reason


async def test_unmapped_status_is_ignored(edge):
    response = await edge.post("twilio", "status", signed=True, data={"MessageSid": "SMign", "MessageStatus": "queued"})
    assert response.status_code == 200 and response.json()["message"] == "Ignored"
    response = await edge.client.get(f"/c/kannel/{UUIDS['kannel']}/status", params={"id": "777", "status": "%d"})
    assert response.status_code == 200 and response.json()["message"] == "Ignored"


async def test_wrong_channel_and_unknown_action(edge):
    response = await edge.client.post(f"/c/twilio/{UUIDS['vonage']}/status", data={"MessageSid": "x"})
    assert (response.status_code, response.json()["data"][0]["error"]) == (400, "channel type wrong")
    response = await edge.client.post(f"/c/twilio/{uuid.uuid4()}/status", data={"MessageSid": "x"})
    assert (response.status_code, response.json()["data"][0]["error"]) == (400, "channel not found")
    response = await edge.client.post(f"/c/vonage/{UUIDS['vonage']}/sent", data={})
    assert response.status_code == 404
    response = await edge.client.post(f"/c/vonage/{UUIDS['vonage']}/status/", data={"messageId": "VNslash", "status": "accepted"})
    assert response.status_code == 200


async def test_nothing_was_published_for_refused_or_ignored_callbacks(edge):
    """Runs last in this module: no body on the broker names an id of a refused request."""
    await asyncio.sleep(0.3)
    refused_ids = {"SMx1", "SMx2", "SMx3", "SMx4", "VNx1", "VNx2", "ATx1", "SMign"}
    published = {m.body.get("external_id") for m in edge.inbound.messages + edge.status.messages}
    assert not refused_ids & published
    assert not [m for m in edge.status.messages if m.body.get("id") == 777]
