"""Kannel adapter table (REST_ADAPTERS.md 9.6): sendsms, smsbox answers, dlr-url and sms-service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from . import kannel
from .adapter import ChannelConfigError, Outcome
from .base import Ignored, Incoming, Rejected, Report
from .testkit import CHANNEL_UUID, CTX, PUBLIC, answer, callback, channel, query, send

CONFIG = {"base_url": "http://127.0.0.1:13013", "username": "sb", "password": "kn-secret"}
CH = channel("kannel", CONFIG, address="1234")
DLR_URL = f"{PUBLIC}/c/kannel/{CHANNEL_UUID}/status?id=1241244&status=%d"


def test_plain_message_request():
    [req] = kannel.build(CH, send("Hello world"), CTX)
    assert req.method == "GET" and req.content is None and req.headers == {}
    assert req.url == (
        "http://127.0.0.1:13013/cgi-bin/sendsms?username=sb&password=kn-secret&from=1234&to=%2B250788123123"
        "&text=Hello+world&dlr-mask=27&dlr-url=https%3A%2F%2Fsb.example%2Fc%2Fkannel%2F"
        "8a9cbe5f-2d2b-4a6e-9c65-0c8c3c5b1f11%2Fstatus%3Fid%3D1241244%26status%3D%25d"
    )
    assert ("dlr-url", DLR_URL) in query(req.url)


def test_unicode_message_asks_for_ucs2_from_utf8():
    [req] = kannel.build(CH, send("Привет 👋"), CTX)
    assert query(req.url)[-3:] == [("dlr-url", DLR_URL), ("coding", "2"), ("charset", "UTF-8")]
    assert ("text", "Привет 👋") in query(req.url)


def test_long_message_goes_whole_and_options():
    ch = channel("kannel", {**CONFIG, "dlr_mask": 31, "smsc": "smsc-a"}, address="")
    text = "word " * 100
    [req] = kannel.build(ch, send(text, high_priority=True), CTX)
    assert query(req.url) == [
        ("username", "sb"), ("password", "kn-secret"), ("to", "+250788123123"), ("text", text), ("dlr-mask", "31"),
        ("dlr-url", DLR_URL), ("smsc", "smsc-a"), ("priority", "1"),
    ]  # fmt: skip


def test_bad_config_is_a_config_error():
    with pytest.raises(ChannelConfigError):
        kannel.build(channel("kannel", {**CONFIG, "dlr_mask": "all"}), send(), CTX)
    with pytest.raises(ChannelConfigError):
        kannel.build(channel("kannel", {**CONFIG, "base_url": "kannel:13013"}), send(), CTX)


ANSWERS = [
    ("accepted", answer(202, text="0: Accepted for delivery"), Outcome("wired")),
    ("queued", answer(202, text="3: Queued for later delivery"), Outcome("wired")),
    ("sent", answer(202, text="Sent."), Outcome("wired")),
    ("unknown 2xx", answer(200, text="<html/>"), Outcome("failed", code="response_content", message="<html/>")),
    (
        "temporal failure",
        answer(503, text="Temporal failure, try again later."),
        Outcome("errored", code="connection_failed", message="HTTP 503: Temporal failure, try again later."),
    ),
    ("sending failed", answer(500, text="Sending failed."), Outcome("errored", code="connection_failed", message="HTTP 500: Sending failed.")),
    (
        "authorization failed",
        answer(403, text="Authorization failed for sendsms"),
        Outcome("failed", code="response_status", message="Authorization failed for sendsms"),
    ),
    ("not routable", answer(403, text="Not routable. Do not try again."), Outcome("failed", code="response_status", message="Not routable. Do not try again.")),
]


@pytest.mark.parametrize("label,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, response, expected):
    assert kannel.interpret(CH, response) == expected


# --- callbacks -------------------------------------------------------------------------


def test_receive_from_the_sms_service_get_url():
    params = {"sender": "+250788123123", "to": "1234", "message": "Muraho 👋", "ts": "1700000000", "id": "a1b2"}
    assert kannel.parse_receive(CH, callback("receive", "kannel", query_params=params)) == [
        Incoming("+250788123123", "Muraho 👋", "a1b2", received_on=datetime.fromtimestamp(1700000000, UTC))
    ]


def test_bad_receives():
    assert kannel.parse_receive(CH, callback("receive", "kannel", query_params={"message": "x"})) == Rejected(400, "field 'sender' required")
    bad_ts = {"sender": "+250788123123", "ts": "noon"}
    assert kannel.parse_receive(CH, callback("receive", "kannel", query_params=bad_ts)) == Rejected(400, "invalid date format")


STATUSES = [
    ("1", Report("delivered", None, "1241244")),
    ("4", Report("sent", None, "1241244")),
    ("8", Report("sent", None, "1241244")),
    ("2", Report("failed", None, "1241244", "dlr_2", "not delivered")),
    ("16", Report("failed", None, "1241244", "dlr_16", "not delivered to SMSC")),
]


@pytest.mark.parametrize("value,expected", STATUSES, ids=[s[0] for s in STATUSES])
def test_status_reports(value, expected):
    req = callback("status", "kannel", query_params={"id": "1241244", "status": value})
    assert kannel.parse_status(CH, req) == [expected]


@pytest.mark.parametrize("value", ["32", "%d", "x", "0"])
def test_unmapped_reports_are_ignored(value):
    assert isinstance(kannel.parse_status(CH, callback("status", "kannel", query_params={"id": "1", "status": value})), Ignored)


def test_bad_reports():
    assert kannel.parse_status(CH, callback("status", "kannel", query_params={"status": "1"})) == Rejected(400, "field 'id' required")
    assert kannel.parse_status(CH, callback("status", "kannel", query_params={"id": "1"})) == Rejected(400, "field 'status' required")
