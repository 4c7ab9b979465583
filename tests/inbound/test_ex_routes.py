"""`/c/ex/...` table, courier style: each case is a request, the answer expected, and what
must (or must not) land in RabbitMQ, read back by schema-checking taps on the real broker.

"Nothing else published" is proven with sentinels: after the request is answered, the test
publishes a marker to `sms.inbound` and `sms.status` itself and waits for it; since the edge
only answers after its own publish was confirmed, anything it published sits before the
marker in the tap.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.core.models import InboundMessage, StatusUpdate
from services.core.redact import MASK
from tests.helpers import Tap

from .conftest import CHANNELS, REST_UUID, SECRET, SOAP_RESPONSE, UNKNOWN_UUID, path

SOAP_BODY = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:com="com.hero">'
    "<soapenv:Header/><soapenv:Body><com:moRequest><source>2349067554729</source><content>Join</content>"
    "</com:moRequest></soapenv:Body></soapenv:Envelope>"
)
SOAP_EMPTY = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/>'
    "<soapenv:Body></soapenv:Body></soapenv:Envelope>"
)
XML_BOMB = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><x><source>&lol2;</source></x>'
FORM = "application/x-www-form-urlencoded"
MSG_UUID = "0191e180-7d60-7000-aded-7d8b151cbd5b"


@dataclass
class Case:
    label: str
    channel: str = "us"
    action: str = "receive"
    method: str = "POST"
    query: str = ""
    body: str | bytes | None = None
    content_type: str | None = None
    multipart: dict[str, str] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # overrides channel/action
    status: int = 200
    contains: str = ""
    message: dict | None = None  # expected InboundMessage fields (sms.inbound msg.<uuid>)
    status_update: dict | None = None  # expected StatusUpdate fields
    event: dict | None = None  # expected ChannelEvent fields
    log_type: str | None = "msg_receive"  # expected ChannelLog type; None = no channel, no log


CASES = [
    # receive: parameters from the query, urlencoded, multipart and JSON bodies
    Case("receive valid message (query)", query="sender=%2B2349067554729&text=Join", contains="Message Accepted",
         message={"urn": "tel:+2349067554729", "from": "+2349067554729", "text": "Join", "transport": "external"}),
    Case("receive valid post", body="sender=%2B2349067554729&text=Join", content_type=FORM,
         contains='"type":"msg"', message={"urn": "tel:+2349067554729", "text": "Join"}),
    Case("receive multipart form", multipart={"sender": "2349067554729", "text": "Join"},
         message={"urn": "tel:+2349067554729", "text": "Join"}),
    Case("receive JSON body (beyond courier)", json={"from": "+250788383383", "text": "Muraho", "id": 5},
         message={"urn": "tel:+250788383383", "text": "Muraho"}),
    Case("receive with from", method="GET", query="from=%2B2349067554729&text=Join",
         message={"urn": "tel:+2349067554729"}),
    Case("receive country parse (11+ digits retried with +)", method="GET", query="from=2349067554729&text=Join",
         message={"urn": "tel:+2349067554729", "from": "+2349067554729"}),
    Case("receive national number with the channel's country", channel="gm", method="GET",
         query="sender=2207222333&text=Join", message={"urn": "tel:+2207222333"}),
    Case("receive short code with a country", method="GET", query="from=10000&text=Stop",
         message={"urn": "tel:10000", "from": "10000"}),
    Case("body wins over query", query="from=%2B2349067554729&text=query", body="text=body", content_type=FORM,
         message={"urn": "tel:+2349067554729", "text": "body"}),
    Case("trailing slash accepted", url=path("us") + "/", query="from=%2B2349067554729&text=Slash",
         message={"text": "Slash"}),
    Case("receive with date", method="GET", query="sender=%2B2349067554729&text=Join&date=2017-06-23T12:30:00.500Z",
         message={"received_on": "2017-06-23T12:30:00.500Z"}),
    Case("receive with time and an offset (converted to UTC)", method="GET",
         query="sender=%2B2349067554729&text=Join&time=2017-06-23T14:30:00%2B02:00",
         message={"received_on": "2017-06-23T12:30:00.000Z"}),
    Case("invalid date (no T, no zone)", method="GET", query="sender=%2B2349067554729&text=Join&time=20170623T123000Z",
         status=400, contains="invalid date format, must be RFC 3339"),
    Case("date without a zone", query="sender=%2B2349067554729&text=Join&date=2017-06-23T12:30:00", status=400,
         contains="invalid date format, must be RFC 3339"),
    Case("invalid URN", method="GET", query="sender=MTN&text=Join", status=400, contains="not a possible number"),
    Case("national number without a country", channel="nocountry", query="from=0788383383&text=x", status=400,
         contains="not a possible number"),
    Case("receive no params", status=400, contains="must have one of 'sender' or 'from' set"),
    Case("receive no sender", method="GET", query="text=Join", status=400,
         contains="must have one of 'sender' or 'from' set"),
    Case("invalid JSON body", body=b"{nope", content_type="application/json", status=400,
         contains="invalid request: body is not valid JSON"),
    # custom field names
    Case("custom field names", channel="custom", method="GET",
         query="from_number=12067799192&messageText=Join&timestamp=2017-06-23T12:30:00Z",
         message={"urn": "tel:+12067799192", "text": "Join", "received_on": "2017-06-23T12:30:00.000Z"}),
    Case("custom field missing", channel="custom", method="GET", query="sent_from=12067799192&messageText=Join",
         status=400, contains="must have one of 'sender' or 'from' set"),
    # other schemes
    Case("ext scheme keeps the sender", channel="ext", method="GET", query="sender=%2B2349067554729&text=Join",
         message={"urn": "ext:+2349067554729", "from": "+2349067554729"}),
    Case("ext scheme trims spaces", channel="ext", method="GET", query="sender=+2349067554729&text=Join",
         message={"urn": "ext:2349067554729"}),
    # SOAP / XML
    Case("receive SOAP", channel="soap", body=SOAP_BODY, content_type="text/xml", contains=SOAP_RESPONSE,
         message={"urn": "tel:+2349067554729", "text": "Join"}),
    Case("SOAP missing nodes", channel="soap", body=SOAP_EMPTY, content_type="text/xml", status=400,
         contains="missing from at: //source or text at: //content node"),
    Case("XML with a DTD refused", channel="soap", body=XML_BOMB, content_type="text/xml", status=400,
         contains="DTDs and entities are not accepted"),
    # receive secret
    Case("secret missing", channel="secret", query="from=0788383383&text=x", status=401, contains="receive secret"),
    Case("secret wrong", channel="secret", query="from=0788383383&text=x&secret=guess", status=401,
         contains="receive secret"),
    Case("secret in query", channel="secret", query=f"from=0788383383&text=q&secret={SECRET}",
         message={"urn": "tel:+250788383383", "text": "q"}),
    Case("secret in header", channel="secret", query="from=0788383383&text=h",
         headers={"X-Switchboard-Secret": SECRET}, message={"text": "h"}),
    Case("secret as basic auth password", channel="secret", query="from=0788383383&text=b",
         headers={"Authorization": "Basic " + base64.b64encode(f"rapidpro:{SECRET}".encode()).decode()},
         message={"text": "b"}),
    # status callbacks
    Case("failed no params", action="failed", status=400, contains="parameters id or uuid should not be empty",
         log_type="msg_status"),
    Case("failed valid", action="failed", method="GET", query="id=12345", contains='"status":"F"',
         status_update={"id": 12345, "uuid": None, "status": "failed", "transport": "external"}, log_type="msg_status"),
    Case("sent valid", action="sent", method="GET", query="id=12345", contains='"status":"S"',
         status_update={"id": 12345, "status": "sent"}, log_type="msg_status"),
    Case("delivered valid post", action="delivered", body="id=12345", content_type=FORM, contains='"status":"D"',
         status_update={"id": 12345, "status": "delivered"}, log_type="msg_status"),
    Case("delivered with a uuid id", action="delivered", query=f"id={MSG_UUID.upper()}",
         status_update={"id": None, "uuid": MSG_UUID, "status": "delivered"}, log_type="msg_status"),
    Case("delivered with a uuid parameter", action="delivered", query=f"uuid={MSG_UUID}",
         status_update={"id": None, "uuid": MSG_UUID}, log_type="msg_status"),
    Case("sent with a string id", action="sent", query="id=abc-42",
         status_update={"id": "abc-42", "uuid": None}, log_type="msg_status"),
    Case("sent with a 20-digit id (beyond 64 bits stays a string)", action="sent", query="id=99999999999999999999",
         status_update={"id": "99999999999999999999"}, log_type="msg_status"),
    # stop events
    Case("stopped event", action="stopped", method="GET", query="from=%2B2349067554729", contains="Event Accepted",
         event={"event_type": "stop_contact", "urn": "tel:+2349067554729"}, log_type="event_receive"),
    Case("stopped event post", action="stopped", body="from=%2B2349067554729", content_type=FORM,
         event={"urn": "tel:+2349067554729"}, log_type="event_receive"),
    Case("stopped invalid URN", action="stopped", query="from=MTN", status=400, contains="not a possible number",
         log_type="event_receive"),
    Case("stopped no params", action="stopped", status=400, contains="field 'from' required", log_type="event_receive"),
    # routing
    Case("unknown action", action="wired", status=404, contains="page not found", log_type=None),
    Case("unknown channel type slug", url=f"/c/zz/{CHANNELS['us']['uuid']}/receive", status=404, log_type=None),
    Case("other method", method="PUT", query="from=%2B2349067554729&text=x", status=405,
         contains="method not allowed", log_type=None),
    Case("channel not found", url=f"/c/ex/{UNKNOWN_UUID}/receive", query="from=1", status=400,
         contains="channel not found", log_type=None),
    Case("channel not a uuid", url="/c/ex/not-a-uuid/receive", status=400, contains="channel not found", log_type=None),
    Case("channel type wrong", url=f"/c/ex/{REST_UUID}/receive", status=400, contains="channel type wrong",
         log_type=None),
    Case("body over 64 KiB", body="text=" + "x" * 70_000, content_type=FORM, query="from=%2B2349067554729",
         status=413, contains="request body too large"),
]


def _request_kwargs(case: Case, marker: str) -> dict:
    query = "&".join(q for q in (case.query, f"case={marker}") if q)
    kwargs: dict[str, Any] = {"headers": dict(case.headers)}
    if case.content_type:
        kwargs["headers"]["Content-Type"] = case.content_type
    if case.multipart is not None:
        kwargs["files"] = {k: (None, v) for k, v in case.multipart.items()}
    elif case.json is not None:
        kwargs["json"] = case.json
    elif case.body is not None:
        kwargs["content"] = case.body
    return {"url": (case.url or path(case.channel, case.action)) + "?" + query, **kwargs}


async def _sentinels(publisher, channel_uuid: str, marker: str) -> None:
    message = InboundMessage(channel_uuid=channel_uuid, urn="tel:+1", from_="+1", text=f"sentinel {marker}", transport="test")
    await publisher.publish("sms.inbound", f"msg.{channel_uuid}", message.to_bytes(), message_id=message.uuid)
    status = StatusUpdate(id=f"sentinel {marker}", channel_uuid=channel_uuid, status="sent")
    await publisher.publish_status(status)


def _is_sentinel(received) -> bool:
    return str(received.body.get("text", received.body.get("id", ""))).startswith("sentinel ")


def _subset(expected: dict, actual: dict, what: str) -> None:
    for key, value in expected.items():
        assert actual.get(key) == value, f"{what}.{key}: expected {value!r}, got {actual.get(key)!r} in {actual}"


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_ex_route(case: Case, client, edge, amqp, inbound_settings, publisher):
    marker = re.sub(r"[^a-z0-9]+", "-", case.label.lower()).strip("-")
    channel_uuid = CHANNELS[case.channel]["uuid"]
    inbound = await Tap.open(amqp, inbound_settings, "sms.inbound")
    statuses = await Tap.open(amqp, inbound_settings, "sms.status")
    logs = await Tap.open(amqp, inbound_settings, "sms.logs")
    try:
        response = await client.request(case.method, **_request_kwargs(case, marker))
        assert response.status_code == case.status, response.text
        assert case.contains in response.text
        if case.status != 200 or case.channel != "soap":
            body = response.json()
            assert body["message"] == ("Error" if case.status >= 400 else body["message"])
            if case.status >= 400:
                assert body["data"][0]["type"] == "error"
        if case.status == 405:
            assert response.headers["allow"] == "GET, POST"

        # Exactly what the case expects landed in RabbitMQ, and nothing else.
        await _sentinels(publisher, channel_uuid, marker)
        await inbound.wait(1, where=_is_sentinel)
        await statuses.wait(1, where=_is_sentinel)
        got_inbound = [m for m in inbound.messages if not _is_sentinel(m)]
        got_status = [m for m in statuses.messages if not _is_sentinel(m)]
        expected_inbound = case.message or case.event
        assert len(got_inbound) == (1 if expected_inbound else 0), [m.body for m in got_inbound]
        assert len(got_status) == (1 if case.status_update else 0), [m.body for m in got_status]
        if case.message:
            [published] = got_inbound
            assert published.routing_key == f"msg.{channel_uuid}"
            _subset({"channel_uuid": channel_uuid, "transport": "external", **case.message}, published.body, "message")
            if case.channel != "soap":
                assert response.json()["data"][0]["msg_uuid"] == published.body["uuid"]
                assert response.json()["data"][0]["urn"] == published.body["urn"]
        if case.event:
            [published] = got_inbound
            assert published.routing_key == f"event.stop_contact.{channel_uuid}"
            _subset({"channel_uuid": channel_uuid, **case.event}, published.body, "event")
        if case.status_update:
            [published] = got_status
            assert published.routing_key == f"status.{case.status_update.get('status', case.action)}.{channel_uuid}"
            _subset({"channel_uuid": channel_uuid, **case.status_update}, published.body, "status")

        # One ChannelLog per request on a known channel, secrets masked.
        if case.log_type is None:
            return
        [entry] = await logs.wait(1, where=lambda m: f"case={marker}" in m.body["http"][0]["url"])
        assert entry.routing_key == f"log.{channel_uuid}"
        assert entry.body["type"] == case.log_type
        exchange = entry.body["http"][0]
        assert exchange["status"] == case.status
        assert exchange["url"].startswith("https://edge.example/c/ex/")
        if case.status >= 400:
            assert entry.body["errors"] and entry.body["errors"][0] in response.text
        assert SECRET not in entry.raw.decode()
        if case.channel == "secret" and case.status == 200:
            assert MASK in exchange["request"]
    finally:
        for tap in (inbound, statuses, logs):
            await tap.close()
