"""The `generic` adapter, driven purely by config (REST_ADAPTERS.md 9.7)."""

from __future__ import annotations

import base64

import orjson
import pytest

from ..core.channels import generic_auth_problem
from . import generic
from .adapter import ChannelConfigError, Outcome
from .testkit import CTX, answer, channel, send

BASE = {"send_url": "http://127.0.0.1:9000/send?to={{to}}&text={{text}}"}


def build(config: dict, **request):
    return generic.build(channel("generic", {**BASE, **config}, address="+15005550006"), send(**request), CTX)


REQUESTS = [
    # label, config, request fields, (method, url, headers, content)
    (
        "default form body",
        {},
        {},
        (
            "POST",
            "http://127.0.0.1:9000/send?to=%2B250788123123&text=Hello+world",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"id=1241244&text=Hello+world&to=%2B250788123123&to_no_plus=250788123123&from=%2B15005550006"
            b"&from_no_plus=15005550006&channel=8a9cbe5f-2d2b-4a6e-9c65-0c8c3c5b1f11",
        ),
    ),
    (
        "basic auth",
        {"method": "GET", "auth": {"type": "basic", "username": "user", "password": "pa55"}},
        {},
        (
            "GET",
            "http://127.0.0.1:9000/send?to=%2B250788123123&text=Hello+world",
            {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + base64.b64encode(b"user:pa55").decode()},
            None,
        ),
    ),
    (
        "bearer auth, json body",
        {"content_type": "json", "body": '{"msg": {{text}}, "n": {{id}}}', "auth": {"type": "bearer", "token": "t0k3n"}},
        {"text": "Muraho 👋"},
        (
            "POST",
            "http://127.0.0.1:9000/send?to=%2B250788123123&text=Muraho+%F0%9F%91%8B",
            {"Content-Type": "application/json", "Authorization": "Bearer t0k3n"},
            '{"msg": "Muraho 👋", "n": 1241244}'.encode(),
        ),
    ),
    (
        "header auth, configured headers win",
        {"method": "GET", "auth": {"type": "header", "name": "X-Api-Key", "value": "k3y"}, "headers": {"X-Trace": "1"}},
        {},
        (
            "GET",
            "http://127.0.0.1:9000/send?to=%2B250788123123&text=Hello+world",
            {"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "k3y", "X-Trace": "1"},
            None,
        ),
    ),
    (
        "query auth appended and escaped",
        {"method": "GET", "auth": {"type": "query", "name": "api key", "value": "a&b=c"}},
        {},
        (
            "GET",
            "http://127.0.0.1:9000/send?to=%2B250788123123&text=Hello+world&api+key=a%26b%3Dc",
            {"Content-Type": "application/x-www-form-urlencoded"},
            None,
        ),
    ),
    (
        "query auth on a URL without query",
        {"send_url": "http://127.0.0.1:9000/send", "method": "GET", "auth": {"type": "query", "name": "key", "value": "v"}},
        {},
        ("GET", "http://127.0.0.1:9000/send?key=v", {"Content-Type": "application/x-www-form-urlencoded"}, None),
    ),
]


@pytest.mark.parametrize("label,config,fields,expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_requests(label, config, fields, expected):
    [req] = build(config, **fields)
    assert (req.method, req.url, req.headers, req.content) == expected


def test_long_message_is_split_at_160_bytes_by_default_and_at_max_length():
    text = ("word " * 60).strip()  # 299 bytes
    assert len(build({"method": "GET"}, text=text)) == 2
    assert len(build({"method": "GET", "max_length": 100}, text=text)) == 3
    assert len(build({"method": "GET", "max_length": 1000}, text=text)) == 1


@pytest.mark.parametrize(
    "auth,problem",
    [
        ({"type": "oauth"}, "type must be one of basic, bearer, header, query, got 'oauth'"),
        ({"type": "basic", "username": "u"}, "password required for auth type basic"),
        ("token", "must be a mapping with a type (basic, bearer, header or query)"),
    ],
)
def test_bad_auth_is_a_config_error(auth, problem):
    assert generic_auth_problem(auth) == problem
    with pytest.raises(ChannelConfigError, match="config.auth"):
        build({"auth": auth})


def test_bad_method_is_a_config_error():
    with pytest.raises(ChannelConfigError, match="method"):
        build({"method": "DELETE"})


MESSAGES = {"data": {"messages": [{"id": "abc-1"}, {"id": "abc-2"}], "count": 7, "ratio": 1.5, "ok": True}}
ANSWERS = [
    # label, config, answer, outcome
    ("any 2xx, no id_path", {}, answer(202, text="queued"), Outcome("wired")),
    ("id_path with array index", {"id_path": "data.messages.1.id"}, answer(200, MESSAGES), Outcome("wired", "abc-2", external_ids=("abc-2",))),
    ("id_path to a number", {"id_path": "data.count"}, answer(200, MESSAGES), Outcome("wired", "7", external_ids=("7",))),
    ("id_path to a float", {"id_path": "data.ratio"}, answer(200, MESSAGES), Outcome("wired", "1.5", external_ids=("1.5",))),
    ("id_path to an object", {"id_path": "data"}, answer(200, MESSAGES), Outcome("wired")),
    ("id_path to a boolean", {"id_path": "data.ok"}, answer(200, MESSAGES), Outcome("wired")),
    ("id_path index out of range", {"id_path": "data.messages.5.id"}, answer(200, MESSAGES), Outcome("wired")),
    ("id_path on text", {"id_path": "id"}, answer(200, text="OK 123"), Outcome("wired")),
    ("5xx retried", {"success_status": [500]}, answer(500, text="x"), Outcome("errored", code="connection_failed", message="HTTP 500")),
    ("429 retried", {}, answer(429, text="x"), Outcome("errored", code="connection_throttled", message="HTTP 429")),
    ("status not accepted", {"success_status": [201]}, answer(200, text="x"), Outcome("failed", code="response_status", message="HTTP 200")),
    ("listed non-2xx accepted", {"success_status": [302]}, answer(302, text="x"), Outcome("wired")),
    (
        "failed with error_code_path",
        {"error_code_path": "error.code"},
        answer(400, {"error": {"code": "INVALID_TO"}}),
        Outcome("failed", code="generic_INVALID_TO", message="HTTP 400"),
    ),
    (
        "error_code_path not found",
        {"error_code_path": "error.code"},
        answer(404, {"message": "x"}),
        Outcome("failed", code="response_status", message="HTTP 404"),
    ),
    (
        "error_match in an accepted answer",
        {"error_match": '"ok": false', "error_code_path": "errors.0.code"},
        answer(200, text='{"ok": false, "errors": [{"code": 17}]}'),
        Outcome("failed", code="generic_17", message="response contains '\"ok\": false'"),
    ),
    (
        "error_match without code",
        {"error_match": "ERROR"},
        answer(200, text="ERROR: no credit"),
        Outcome("failed", code="response_content", message="response contains 'ERROR'"),
    ),
    (
        "mt_response_check missing",
        {"mt_response_check": "SUCCESS"},
        answer(200, text="queued"),
        Outcome("failed", code="response_content", message="response does not contain 'SUCCESS'"),
    ),
    ("mt_response_check found", {"mt_response_check": "SUCCESS", "id_path": "id"}, answer(200, {"r": "SUCCESS", "id": 9}), Outcome("wired", "9", external_ids=("9",))),
]


@pytest.mark.parametrize("label,config,response,expected", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(label, config, response, expected):
    assert generic.interpret(channel("generic", {**BASE, **config}), response) == expected


def test_bad_success_status_is_a_config_error():
    with pytest.raises(ChannelConfigError):
        generic.interpret(channel("generic", {**BASE, "success_status": ["ok"]}), answer(200, text=""))


def test_json_body_is_valid_json():
    [req] = build({"content_type": "json"}, text='say "hi" <b>')
    assert orjson.loads(req.content)["text"] == 'say "hi" <b>'
