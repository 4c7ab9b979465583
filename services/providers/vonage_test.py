"""Vonage adapter table (REST_ADAPTERS.md 9.3): requests, answers, callbacks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from . import vonage
from .adapter import Outcome
from .base import Ignored, Incoming, Rejected, Report
from .testkit import CHANNEL_UUID, CTX, PUBLIC, answer, callback, channel, form, send

CH = channel("vonage", {"api_key": "k3y", "api_secret": "vn-secret", "base_url": "http://127.0.0.1:9000"}, address="+447700900001")
CALLBACK = f"{PUBLIC}/c/vonage/{CHANNEL_UUID}/status?id=1241244"


def expected_form(text: str, kind: str) -> list[tuple[str, str]]:
    return [
        ("api_key", "k3y"),
        ("api_secret", "vn-secret"),
        ("from", "447700900001"),
        ("to", "250788123123"),
        ("text", text),
        ("type", kind),
        ("status-report-req", "1"),
        ("callback", CALLBACK),
    ]


def test_plain_message_request():
    [req] = vonage.build(CH, send("Hello world"), CTX)
    assert (req.method, req.url) == ("POST", "http://127.0.0.1:9000/sms/json")
    assert req.headers == {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    assert form(req.content) == expected_form("Hello world", "text")
    assert req.content.startswith(b"api_key=k3y&api_secret=vn-secret&from=447700900001&to=250788123123&text=Hello+world&type=text")


@pytest.mark.parametrize(
    "text,kind",
    [("Muraho 👋", "unicode"), ("Привет", "unicode"), ("€10 [ok] {x} ~^|\\", "text"), ("Ça coûte 5£", "unicode")],
)
def test_type_is_unicode_unless_all_gsm7(text, kind):
    [req] = vonage.build(CH, send(text), CTX)
    assert form(req.content) == expected_form(text, kind)


def test_long_message_is_one_request_unless_max_length_is_set():
    text = ("word " * 100).strip()
    assert len(vonage.build(CH, send(text), CTX)) == 1
    ch = channel("vonage", {**CH.config, "max_length": 160}, address=CH.address)
    reqs = vonage.build(ch, send(text), CTX)
    assert len(reqs) == 4 and all(len(dict(form(r.content))["text"]) <= 160 for r in reqs)


def test_attachments_are_appended_to_the_text():
    [req] = vonage.build(CH, send("See", attachments=["image/png:https://x.example/a.png"]), CTX)
    assert dict(form(req.content))["text"] == "See\nhttps://x.example/a.png"


def accepted(*ids: str):
    return {"message-count": str(len(ids)), "messages": [
        {"to": "250788123123", "message-id": i, "status": "0", "remaining-balance": "3.1", "message-price": "0.03", "network": "63510"}
        for i in ids
    ]}  # fmt: skip


ANSWERS = [
    ("success", answer(200, accepted("0A0000000123ABCD")), Outcome("wired", "0A0000000123ABCD", external_ids=("0A0000000123ABCD",))),
    ("concatenated", answer(200, accepted("0A1", "0A2")), Outcome("wired", "0A1", external_ids=("0A1", "0A2"))),
    (
        "invalid credentials",
        answer(200, {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]}),
        Outcome("failed", code="vonage_4", message="Bad Credentials"),
    ),
    (
        "throttled",
        answer(200, {"message-count": "1", "messages": [{"status": "1", "error-text": "Throughput Rate Exceeded"}]}),
        Outcome("errored", code="connection_throttled", message="vonage 1: Throughput Rate Exceeded"),
    ),
    (
        "internal error",
        answer(200, {"message-count": "1", "messages": [{"status": "5", "error-text": "Internal Error"}]}),
        Outcome("errored", code="connection_failed", message="vonage 5: Internal Error"),
    ),
    (
        "second part refused",
        answer(200, {"message-count": "2", "messages": [accepted("0A1")["messages"][0], {"status": "6", "error-text": "Invalid Message"}]}),
        Outcome("failed", code="vonage_6", message="Invalid Message"),
    ),
    ("no messages", answer(200, {"error": "x"}), Outcome("failed", code="response_content", message="answer has no messages")),
    ("not json", answer(200, text="<html/>"), Outcome("failed", code="response_content", message="answer has no messages")),
    ("http 500", answer(500, text="oops"), Outcome("errored", code="connection_failed", message="HTTP 500")),
    ("http 429", answer(429, text="slow down"), Outcome("errored", code="connection_throttled", message="HTTP 429")),
    ("http 401", answer(401, text="no"), Outcome("failed", code="response_status", message="HTTP 401")),
]


@pytest.mark.parametrize("label,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, response, expected):
    assert vonage.interpret(CH, response) == expected


# --- callbacks -------------------------------------------------------------------------

INBOUND = {"msisdn": "447700900000", "to": "447700900001", "messageId": "0A0000000123ABCD", "text": "Hello", "type": "text",
           "keyword": "HELLO", "message-timestamp": "2020-01-01 12:00:00"}  # fmt: skip


def test_receive_message_as_query_or_form():
    expected = [Incoming("447700900000", "Hello", "0A0000000123ABCD", received_on=datetime(2020, 1, 1, 12, tzinfo=UTC))]
    assert vonage.parse_receive(CH, callback("receive", "vonage", query_params=INBOUND)) == expected
    assert vonage.parse_receive(CH, callback("receive", "vonage", body=INBOUND)) == expected
    assert vonage.parse_receive(CH, callback("receive", "vonage", json_body=INBOUND)) == expected


BAD_RECEIVES = [
    ("no msisdn", {k: v for k, v in INBOUND.items() if k != "msisdn"}, Rejected(400, "field 'msisdn' required")),
    ("no messageId", {k: v for k, v in INBOUND.items() if k != "messageId"}, Rejected(400, "field 'messageId' required")),
    ("bad date", {**INBOUND, "message-timestamp": "01/01/2020"}, Rejected(400, "invalid date format")),
]


@pytest.mark.parametrize("label,params,expected", BAD_RECEIVES, ids=[b[0] for b in BAD_RECEIVES])
def test_bad_receive_callbacks(label, params, expected):
    assert vonage.parse_receive(CH, callback("receive", "vonage", body=params)) == expected


DLR = {"msisdn": "250788123123", "to": "Switchboard", "messageId": "0A1", "price": "0.03", "scts": "2001011400",
       "err-code": "0", "message-timestamp": "2020-01-01 14:00:00"}  # fmt: skip
STATUSES = [
    ("delivered", "delivered", Report("delivered", "0A1", "7")),
    ("accepted", "accepted", Report("sent", "0A1", "7")),
    ("buffered", "buffered", Report("sent", "0A1", "7")),
    ("failed", "failed", Report("failed", "0A1", "7", "dlr_failed", "err-code 0")),
    ("expired", "expired", Report("failed", "0A1", "7", "dlr_expired", "err-code 0")),
    ("rejected", "rejected", Report("failed", "0A1", "7", "dlr_rejected", "err-code 0")),
]


@pytest.mark.parametrize("label,value,expected", STATUSES, ids=[s[0] for s in STATUSES])
def test_status_callbacks(label, value, expected):
    req = callback("status", "vonage", query_params={"id": "7", **DLR, "status": value})
    assert vonage.parse_status(CH, req) == [expected]


def test_unknown_status_is_ignored_and_missing_fields_rejected():
    assert isinstance(vonage.parse_status(CH, callback("status", "vonage", body={**DLR, "status": "unknown"})), Ignored)
    no_id = {k: v for k, v in DLR.items() if k != "messageId"}
    assert vonage.parse_status(CH, callback("status", "vonage", body={**no_id, "status": "delivered"})) == Rejected(
        400, "field 'messageId' required"
    )
    assert vonage.parse_status(CH, callback("status", "vonage", body=DLR)) == Rejected(400, "field 'status' required")


def test_report_without_our_id_has_none():
    [report] = vonage.parse_status(CH, callback("status", "vonage", body={**DLR, "status": "delivered"}))
    assert report.msg_id is None and report.external_id == "0A1"


def test_use_national_sends_the_national_number():
    ch = channel("vonage", {**CH.config, "use_national": True}, address=CH.address, country="RW")
    [req] = vonage.build(ch, send(to="tel:+250788123123"), CTX)
    assert dict(form(req.content))["to"] == "788123123"
