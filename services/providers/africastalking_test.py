"""Africa's Talking adapter table (REST_ADAPTERS.md 9.5): requests, answers, callbacks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from . import africastalking as at
from .adapter import Outcome
from .base import Ignored, Incoming, Rejected, Report
from .testkit import CTX, answer, callback, channel, form, send

CONFIG = {"username": "sandbox", "api_key": "at-api-key", "base_url": "http://127.0.0.1:9000/at"}
CH = channel("africastalking", CONFIG, address="SWITCHBD")


def test_plain_message_request():
    [req] = at.build(CH, send("Hello world"), CTX)
    assert (req.method, req.url) == ("POST", "http://127.0.0.1:9000/at/version1/messaging")
    assert req.headers == {"apiKey": "at-api-key", "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    assert req.content == b"username=sandbox&to=%2B250788123123&message=Hello+world&from=SWITCHBD"


def test_unicode_and_long_messages_go_whole():
    [req] = at.build(CH, send("Habari 👋"), CTX)
    assert form(req.content) == [("username", "sandbox"), ("to", "+250788123123"), ("message", "Habari 👋"), ("from", "SWITCHBD")]
    long_text = "neno " * 400
    [req] = at.build(CH, send(long_text), CTX)
    assert dict(form(req.content))["message"] == long_text


def test_shared_short_code_sends_no_from_and_plus_is_added():
    ch = channel("africastalking", {**CONFIG, "is_shared": True}, address="20880")
    [req] = at.build(ch, send(to="254711000000"), CTX)
    assert form(req.content) == [("username", "sandbox"), ("to", "+254711000000"), ("message", "Hello world")]


def recipients(*items) -> dict:
    return {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000", "Recipients": list(items)}}


def recipient(code: int, status: str, message_id: str = "ATXid_1") -> dict:
    return {"statusCode": code, "number": "+250788123123", "status": status, "cost": "KES 0.8000", "messageId": message_id}


ANSWERS = [
    ("sent", answer(201, recipients(recipient(101, "Success"))), Outcome("wired", "ATXid_1", external_ids=("ATXid_1",))),
    ("queued", answer(201, recipients(recipient(102, "Queued", "ATXid_2"))), Outcome("wired", "ATXid_2", external_ids=("ATXid_2",))),
    (
        "invalid number",
        answer(201, recipients(recipient(403, "InvalidPhoneNumber", "None"))),
        Outcome("failed", code="africastalking_403", message="InvalidPhoneNumber"),
    ),
    (
        "insufficient balance",
        answer(201, recipients(recipient(405, "InsufficientBalance", "None"))),
        Outcome("failed", code="africastalking_405", message="InsufficientBalance"),
    ),
    (
        "gateway error",
        answer(201, recipients(recipient(501, "GatewayError", "None"))),
        Outcome("errored", code="connection_failed", message="africastalking 501: GatewayError"),
    ),
    (
        "no recipients",
        answer(201, {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}),
        Outcome("failed", code="response_content", message="InvalidSenderId"),
    ),
    ("not the documented shape", answer(200, {"x": 1}), Outcome("failed", code="response_content", message="answer has no SMSMessageData")),
    ("throttled", answer(429, text="Too many requests"), Outcome("errored", code="connection_throttled", message="HTTP 429")),
    ("unauthorized", answer(401, text="The supplied authentication is invalid"), Outcome("failed", code="response_status", message="HTTP 401")),
    ("server error", answer(500, text="error"), Outcome("errored", code="connection_failed", message="HTTP 500")),
]


@pytest.mark.parametrize("label,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, response, expected):
    assert at.interpret(CH, response) == expected


# --- callbacks -------------------------------------------------------------------------

INBOUND = {"from": "+254711000000", "to": "20880", "text": "Hello", "date": "2017-05-03T06:04:45Z", "id": "8b6a-4a2c",
           "linkId": "a7d3", "networkCode": "63902"}  # fmt: skip


@pytest.mark.parametrize("date", ["2017-05-03T06:04:45Z", "2017-05-03 06:04:45", "2017-05-03T06:04:45.000+00:00"])
def test_receive_message(date):
    req = callback("receive", "africastalking", body={**INBOUND, "date": date})
    assert at.parse_receive(CH, req) == [Incoming("+254711000000", "Hello", "8b6a-4a2c", received_on=datetime(2017, 5, 3, 6, 4, 45, tzinfo=UTC))]


BAD_RECEIVES = [
    ("no from", {k: v for k, v in INBOUND.items() if k != "from"}, Rejected(400, "field 'from' required")),
    ("no id", {k: v for k, v in INBOUND.items() if k != "id"}, Rejected(400, "field 'id' required")),
    ("bad date", {**INBOUND, "date": "3 May 2017"}, Rejected(400, "invalid date format")),
]


@pytest.mark.parametrize("label,body,expected", BAD_RECEIVES, ids=[b[0] for b in BAD_RECEIVES])
def test_bad_receive_callbacks(label, body, expected):
    assert at.parse_receive(CH, callback("receive", "africastalking", body=body)) == expected


STATUSES = [
    ("Success", Report("delivered", "ATXid_1")),
    ("Sent", Report("sent", "ATXid_1")),
    ("Submitted", Report("sent", "ATXid_1")),
    ("Buffered", Report("sent", "ATXid_1")),
    ("Rejected", Report("failed", "ATXid_1", None, "dlr_Rejected", "UserInBlacklist")),
    ("Failed", Report("failed", "ATXid_1", None, "dlr_Failed", "UserInBlacklist")),
    ("AbsentSubscriber", Report("failed", "ATXid_1", None, "dlr_AbsentSubscriber", "UserInBlacklist")),
    ("Expired", Report("failed", "ATXid_1", None, "dlr_Expired", "UserInBlacklist")),
]


@pytest.mark.parametrize("value,expected", STATUSES, ids=[s[0] for s in STATUSES])
def test_status_callbacks(value, expected):
    body = {"id": "ATXid_1", "status": value, "phoneNumber": "+250788123123", "networkCode": "63510", "retryCount": "0"}
    if expected.status == "failed":
        body["failureReason"] = "UserInBlacklist"
    assert at.parse_status(CH, callback("status", "africastalking", body=body)) == [expected]


def test_bad_or_unmapped_status_callbacks():
    assert isinstance(at.parse_status(CH, callback("status", "africastalking", body={"id": "A", "status": "Queued"})), Ignored)
    assert at.parse_status(CH, callback("status", "africastalking", body={"status": "Success"})) == Rejected(400, "field 'id' required")
    assert at.parse_status(CH, callback("status", "africastalking", body={"id": "A"})) == Rejected(400, "field 'status' required")

