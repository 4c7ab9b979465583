"""Twilio adapter table (REST_ADAPTERS.md 9.2): requests, answers, callbacks, signatures."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from . import twilio
from .adapter import Outcome
from .base import Ignored, Incoming, Rejected, Report
from .testkit import CHANNEL_UUID, CTX, PUBLIC, answer, callback, channel, form, send

CONFIG = {"account_sid": "AC0123", "auth_token": "tw-secret-token", "base_url": "http://127.0.0.1:9000/tw/"}
CH = channel("twilio", CONFIG, address="+15005550006")
URL = "http://127.0.0.1:9000/tw/2010-04-01/Accounts/AC0123/Messages.json"
STATUS_CALLBACK = f"{PUBLIC}/c/twilio/{CHANNEL_UUID}/status?id=1241244"


def test_plain_message_request():
    [req] = twilio.build(CH, send("Hello world"), CTX)
    assert (req.method, req.url) == ("POST", URL)
    assert req.headers == {
        "Authorization": "Basic " + base64.b64encode(b"AC0123:tw-secret-token").decode(),
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert req.content == (
        b"To=%2B250788123123&From=%2B15005550006&Body=Hello+world&StatusCallback="
        b"https%3A%2F%2Fsb.example%2Fc%2Ftwilio%2F8a9cbe5f-2d2b-4a6e-9c65-0c8c3c5b1f11%2Fstatus%3Fid%3D1241244"
    )


def test_unicode_message_request():
    [req] = twilio.build(CH, send("Muraho 👋 ñ"), CTX)
    assert ("Body", "Muraho 👋 ñ") in form(req.content)


def test_long_message_is_split_at_1600_bytes_with_media_on_the_first_part_only():
    text = ("word " * 400).strip()  # 1999 bytes
    reqs = twilio.build(CH, send(text, attachments=["image/jpeg:https://x.example/a.jpg"]), CTX)
    bodies = [dict(form(r.content))["Body"] for r in reqs]
    assert len(reqs) == 2 and all(len(b.encode()) <= 1600 for b in bodies)
    assert " ".join(bodies) == text
    assert ("MediaUrl", "https://x.example/a.jpg") in form(reqs[0].content)
    assert "MediaUrl" not in dict(form(reqs[1].content))


def test_options_string_id_and_empty_address():
    ch = channel("twilio", {**CONFIG, "messaging_service_sid": "MG9", "max_length": 20}, address="")
    [req] = twilio.build(ch, send("hi", id="ab c/1", to="tel:250788123123"), CTX)
    assert form(req.content) == [
        ("To", "+250788123123"),
        ("Body", "hi"),
        ("StatusCallback", f"{PUBLIC}/c/twilio/{CHANNEL_UUID}/status?id=ab%20c%2F1"),
        ("MessagingServiceSid", "MG9"),
    ]


def test_default_base_url():
    ch = channel("twilio", {"account_sid": "AC1", "auth_token": "t0ken"})
    [req] = twilio.build(ch, send(), CTX)
    assert req.url == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"


ANSWERS = [
    ("success", answer(201, {"sid": "SM123", "status": "queued"}), Outcome("wired", "SM123", external_ids=("SM123",))),
    ("2xx without sid", answer(201, {"status": "queued"}), Outcome("failed", code="response_content", message="answer has no message sid")),
    (
        "invalid number",
        answer(400, {"code": 21211, "message": "The 'To' number is not valid.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
        Outcome("failed", code="twilio_21211", message="The 'To' number is not valid."),
    ),
    (
        "throttled",
        answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        Outcome("errored", code="connection_throttled", message="twilio 20429: Too Many Requests"),
    ),
    (
        "server error with code",
        answer(503, {"code": 20500, "message": "Internal Server Error", "status": 503}),
        Outcome("errored", code="connection_failed", message="twilio 20500: Internal Server Error"),
    ),
    ("5xx html", answer(502, text="<html>bad gateway</html>"), Outcome("errored", code="connection_failed", message="HTTP 502")),
    ("401 without code", answer(401, text="nope"), Outcome("failed", code="response_status", message="HTTP 401")),
]


@pytest.mark.parametrize("label,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, response, expected):
    assert twilio.interpret(CH, response) == expected


# --- callbacks -------------------------------------------------------------------------


def signed(action: str, body: dict[str, str], query: dict[str, str] | None = None, token: str = "tw-secret-token"):
    req = callback(action, "twilio", body=body, query_params=query)
    signature = twilio.signature(token, req.url, req.form)
    return replace(req, headers={"X-Twilio-Signature": signature})


def test_signature_matches_twilios_published_example():
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309", "To": "+18005551212", "Caller": "+14158675309"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio.signature("12345", url, {k: [v] for k, v in params.items()}) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_url_variants_add_or_remove_the_default_port():
    assert twilio.url_variants("https://sb.example/c/x?a=1") == ["https://sb.example/c/x?a=1", "https://sb.example:443/c/x?a=1"]
    assert twilio.url_variants("http://sb.example:80/c") == ["http://sb.example:80/c", "http://sb.example/c"]
    assert twilio.url_variants("http://sb.example:8080/c") == ["http://sb.example:8080/c"]


RECEIVE = {"MessageSid": "SM9", "From": "+250788123123", "To": "+15005550006", "Body": "Hi there", "NumMedia": "0"}


def test_receive_message():
    assert twilio.parse_receive(CH, signed("receive", RECEIVE)) == [
        Incoming(sender="+250788123123", text="Hi there", external_id="SM9")
    ]


def test_receive_with_media():
    body = {**RECEIVE, "Body": "", "NumMedia": "2", "MediaUrl0": "https://m/0", "MediaContentType0": "image/jpeg",
            "MediaUrl1": "https://m/1", "MediaContentType1": "audio/ogg"}  # fmt: skip
    [msg] = twilio.parse_receive(CH, signed("receive", body))
    assert msg.attachments == ("image/jpeg:https://m/0", "audio/ogg:https://m/1") and msg.text == ""


def test_signature_over_the_port_variant_is_accepted():
    req = callback("receive", "twilio", body=RECEIVE)
    with_port = req.url.replace("https://sb.example/", "https://sb.example:443/")
    req = replace(req, headers={"X-Twilio-Signature": twilio.signature("tw-secret-token", with_port, req.form)})
    assert isinstance(twilio.parse_receive(CH, req), list)


BAD_CALLBACKS = [
    ("missing signature", callback("receive", "twilio", body=RECEIVE), Rejected(403, "missing request signature")),
    ("wrong token", signed("receive", RECEIVE, token="other"), Rejected(403, "invalid request signature")),
    (
        "tampered body",
        replace(signed("receive", RECEIVE), form={**{k: [v] for k, v in RECEIVE.items()}, "Body": ["changed"]}),
        Rejected(403, "invalid request signature"),
    ),
    ("missing MessageSid", signed("receive", {"From": "+250788123123"}), Rejected(400, "field 'MessageSid' required")),
    ("missing From", signed("receive", {"MessageSid": "SM1"}), Rejected(400, "field 'From' required")),
    ("bad NumMedia", signed("receive", {**RECEIVE, "NumMedia": "x"}), Rejected(400, "field 'NumMedia' must be a number")),
]


@pytest.mark.parametrize("label,req,expected", BAD_CALLBACKS, ids=[c[0] for c in BAD_CALLBACKS])
def test_bad_receive_callbacks(label, req, expected):
    assert twilio.parse_receive(CH, req) == expected


def test_signature_check_can_be_turned_off():
    ch = channel("twilio", {**CONFIG, "validate_signature": False})
    assert twilio.parse_receive(ch, callback("receive", "twilio", body=RECEIVE))[0].external_id == "SM9"


STATUSES = [
    ("sent", {"MessageStatus": "sent"}, Report("sent", "SM9", "1241244")),
    ("delivered", {"MessageStatus": "delivered"}, Report("delivered", "SM9", "1241244")),
    ("read", {"MessageStatus": "read"}, Report("delivered", "SM9", "1241244")),
    (
        "undelivered",
        {"MessageStatus": "undelivered", "ErrorCode": "30003"},
        Report("failed", "SM9", "1241244", "dlr_undelivered", "ErrorCode 30003"),
    ),
    ("failed", {"MessageStatus": "failed"}, Report("failed", "SM9", "1241244", "dlr_failed", "failed")),
    ("canceled", {"MessageStatus": "canceled"}, Report("failed", "SM9", "1241244", "dlr_canceled", "canceled")),
]


@pytest.mark.parametrize("label,body,expected", STATUSES, ids=[s[0] for s in STATUSES])
def test_status_callbacks(label, body, expected):
    req = signed("status", {"MessageSid": "SM9", **body}, query={"id": "1241244"})
    assert twilio.parse_status(CH, req) == [expected]


@pytest.mark.parametrize("value", ["queued", "accepted", "scheduled", "sending", "receiving", "received", "partially_delivered"])
def test_unmapped_statuses_are_ignored(value):
    result = twilio.parse_status(CH, signed("status", {"MessageSid": "SM9", "MessageStatus": value}))
    assert isinstance(result, Ignored)


def test_bad_status_callbacks():
    assert twilio.parse_status(CH, signed("status", {"MessageStatus": "sent"})) == Rejected(400, "field 'MessageSid' required")
    assert twilio.parse_status(CH, signed("status", {"MessageSid": "SM1"})) == Rejected(400, "field 'MessageStatus' required")
    unsigned = callback("status", "twilio", body={"MessageSid": "SM1", "MessageStatus": "sent"})
    assert twilio.parse_status(CH, unsigned) == Rejected(403, "missing request signature")
