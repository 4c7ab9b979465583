"""Infobip adapter table (REST_ADAPTERS.md 9.4): requests, answers, JSON pushes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from . import infobip
from .adapter import ChannelConfigError, Outcome
from .base import Ignored, Incoming, Rejected, Report
from .testkit import CHANNEL_UUID, CTX, PUBLIC, answer, callback, channel, send

CH = channel("infobip", {"api_key": "ib-api-key", "base_url": "https://127.0.0.1:9443/ib"}, address="+447491163443")
CALLBACK = f"{PUBLIC}/c/infobip/{CHANNEL_UUID}/status?id=1241244"


def expected_body(text: str, **extra) -> dict:
    message = {"from": "447491163443", "destinations": [{"to": "250788123123"}], "text": text, "notifyUrl": CALLBACK,
               "notifyContentType": "application/json", "intermediateReport": True, **extra}  # fmt: skip
    return {"messages": [message]}


def test_plain_message_request():
    [req] = infobip.build(CH, send("Hello world"), CTX)
    assert (req.method, req.url) == ("POST", "https://127.0.0.1:9443/ib/sms/2/text/advanced")
    assert req.headers == {"Authorization": "App ib-api-key", "Content-Type": "application/json", "Accept": "application/json"}
    assert orjson.loads(req.content) == expected_body("Hello world")


def test_unicode_message_request():
    [req] = infobip.build(CH, send("Habari 👋 ñ"), CTX)
    assert orjson.loads(req.content) == expected_body("Habari 👋 ñ")


def test_long_message_goes_whole_and_options():
    text = "x" * 2000
    ch = channel("infobip", {"username": "u", "password": "p4ss", "transliteration": "TURKISH"}, address="")
    [req] = infobip.build(ch, send(text), CTX)
    assert req.url == "https://api.infobip.com/sms/2/text/advanced"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p4ss").decode()
    body = orjson.loads(req.content)["messages"][0]
    assert "from" not in body and body["text"] == text and body["transliteration"] == "TURKISH"


def test_missing_credentials_is_a_config_error():
    with pytest.raises(ChannelConfigError):
        infobip.build(channel("infobip", {"username": "u"}), send(), CTX)


def sent(group_id: int, group: str, name: str, description: str, message_id: str = "2250be2d4219-3af1-78856-aabe-1362af1edfd2"):
    status = {"groupId": group_id, "groupName": group, "id": 26, "name": name, "description": description}
    return {"bulkId": "2034072219640523072", "messages": [{"to": "250788123123", "messageId": message_id, "status": status}]}


ANSWERS = [
    (
        "pending",
        answer(200, sent(1, "PENDING", "PENDING_ACCEPTED", "Message sent to next instance")),
        Outcome("wired", "2250be2d4219-3af1-78856-aabe-1362af1edfd2", external_ids=("2250be2d4219-3af1-78856-aabe-1362af1edfd2",)),
    ),
    ("delivered", answer(200, sent(3, "DELIVERED", "DELIVERED_TO_HANDSET", "Delivered", "m1")), Outcome("wired", "m1", external_ids=("m1",))),
    (
        "no credits",
        answer(200, sent(5, "REJECTED", "REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits")),
        Outcome("failed", code="infobip_REJECTED_NOT_ENOUGH_CREDITS", message="Not enough credits"),
    ),
    ("no messages", answer(200, {"bulkId": "1"}), Outcome("failed", code="response_content", message="answer has no messages")),
    (
        "unauthorized",
        answer(401, {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}),
        Outcome("failed", code="infobip_UNAUTHORIZED", message="Invalid login details"),
    ),
    (
        "bad request",
        answer(400, {"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "Bad request"}}}),
        Outcome("failed", code="infobip_BAD_REQUEST", message="Bad request"),
    ),
    (
        "throttled",
        answer(429, {"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS", "text": "Too many requests"}}}),
        Outcome("errored", code="connection_throttled", message="infobip TOO_MANY_REQUESTS: Too many requests"),
    ),
    (
        "server error",
        answer(500, {"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}}}),
        Outcome("errored", code="connection_failed", message="infobip GENERAL_ERROR: Something went wrong"),
    ),
    ("403 html", answer(403, text="<html/>"), Outcome("failed", code="response_status", message="HTTP 403")),
]


@pytest.mark.parametrize("label,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, response, expected):
    assert infobip.interpret(CH, response) == expected


# --- callbacks -------------------------------------------------------------------------


def test_receive_publishes_one_message_per_result():
    push = {"results": [
        {"messageId": "817790313235066447", "from": "385916242493", "to": "385921004026", "text": "QUIZ Correct answer is Paris",
         "cleanText": "Correct answer is Paris", "keyword": "QUIZ", "receivedAt": "2019-11-09T16:00:00.000+0000", "smsCount": 1},
        {"messageId": "m2", "from": "385916242494", "to": "385921004026", "text": "hi", "receivedAt": "2019-11-09T17:00:00.000+01:00"},
        {"messageId": "m3", "from": "385916242495", "text": "no date"},
    ], "messageCount": 3, "pendingMessageCount": 0}  # fmt: skip
    assert infobip.parse_receive(CH, callback("receive", "infobip", json_body=push)) == [
        Incoming("385916242493", "QUIZ Correct answer is Paris", "817790313235066447", received_on=datetime(2019, 11, 9, 16, tzinfo=UTC)),
        Incoming("385916242494", "hi", "m2", received_on=datetime(2019, 11, 9, 17, tzinfo=timezone(timedelta(hours=1)))),
        Incoming("385916242495", "no date", "m3"),
    ]


BAD_RECEIVES = [
    ("no results", {"messageCount": 0}, Rejected(400, "field 'results' required")),
    ("results not a list", {"results": "x"}, Rejected(400, "field 'results' required")),
    ("no from", {"results": [{"messageId": "m", "text": "x"}]}, Rejected(400, "field 'from' required")),
    ("bad date", {"results": [{"messageId": "m", "from": "385916242493", "receivedAt": "yesterday"}]}, Rejected(400, "invalid date format")),
    ("not json", None, Rejected(400, "field 'results' required")),
]


@pytest.mark.parametrize("label,push,expected", BAD_RECEIVES, ids=[b[0] for b in BAD_RECEIVES])
def test_bad_receive_callbacks(label, push, expected):
    assert infobip.parse_receive(CH, callback("receive", "infobip", json_body=push)) == expected


def result(group: str, name: str, message_id: str = "m1", error: str = "NO_ERROR") -> dict:
    return {"bulkId": "b1", "messageId": message_id, "to": "250788123123", "sentAt": "2019-11-09T16:00:00.000+0000",
            "doneAt": "2019-11-09T16:00:00.000+0000", "smsCount": 1,
            "status": {"groupId": 3, "groupName": group, "id": 5, "name": name, "description": "d"},
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": error, "description": "No Error", "permanent": False}}  # fmt: skip


def test_status_push_with_several_results():
    push = {"results": [
        result("DELIVERED", "DELIVERED_TO_HANDSET", "m1"),
        result("PENDING", "PENDING_ENROUTE", "m2"),
        result("UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", "m3", "EC_ABSENT_SUBSCRIBER"),
        result("EXPIRED", "EXPIRED_EXPIRED", "m4"),
        result("REJECTED", "REJECTED_NETWORK", "m5"),
        result("SOMETHING_NEW", "X", "m6"),
    ]}  # fmt: skip
    req = callback("status", "infobip", json_body=push, query_params={"id": "1241244"})
    assert infobip.parse_status(CH, req) == [
        Report("delivered", "m1", "1241244"),
        Report("sent", "m2", "1241244"),
        Report("failed", "m3", "1241244", "dlr_UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER"),
        Report("failed", "m4", "1241244", "dlr_EXPIRED", "EXPIRED_EXPIRED NO_ERROR"),
        Report("failed", "m5", "1241244", "dlr_REJECTED", "REJECTED_NETWORK NO_ERROR"),
    ]


def test_bad_or_unmapped_status_pushes():
    assert isinstance(infobip.parse_status(CH, callback("status", "infobip", json_body={"results": [result("NEW", "X")]})), Ignored)
    assert infobip.parse_status(CH, callback("status", "infobip", json_body={})) == Rejected(400, "field 'results' required")
    no_id = {**result("DELIVERED", "D"), "messageId": ""}
    assert infobip.parse_status(CH, callback("status", "infobip", json_body={"results": [no_id]})) == Rejected(
        400, "field 'messageId' required"
    )
