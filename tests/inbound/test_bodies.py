"""The hot path builds ChannelLog bodies as dicts (no pydantic per request) and reformats UTC dates
without datetime arithmetic: the logs must be exactly what the ChannelLog model would write, valid
against schemas/channel_log.json, secrets masked; the dates as the general path would give."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from services.core.models import ChannelLog
from services.core.redact import MASK, register_secret
from services.inbound.common import (
    Answer,
    Call,
    RequestError,
    channel_log,
    error_answer,
    json_answer,
    parse_date,
)
from tests.helpers import assert_valid

CHANNEL = SimpleNamespace(uuid="8eb23e93-5ecb-45ba-b726-3b064e0c56ab")


def call(query: bytes = b"", body: bytes = b"", headers=(), msg_id=None, errors=()) -> Call:
    scope = {
        "method": "POST",
        "path": f"/c/ex/{CHANNEL.uuid}/receive",
        "query_string": query,
        "headers": [(b"host", b"edge.example"), (b"content-type", b"application/x-www-form-urlencoded"), *headers],
    }
    made = Call(None, CHANNEL, "ex", "receive", "msg_receive", scope)
    made.body, made.msg_id = body, msg_id
    made.errors.extend(errors)
    return made


def built(c: Call, answer: Answer) -> tuple[str, bytes, dict]:
    uuid, body = channel_log(c, answer, "https://edge.example")
    data = assert_valid(body, "channel_log")
    # Same fields, order and types as the model writes them.
    assert ChannelLog.model_validate_json(body).to_bytes() == body
    assert data["uuid"] == uuid
    return uuid, body, data


def test_a_receive_log_matches_the_model_and_the_schema():
    c = call(body=b"from=%2B250788383383&text=hi", msg_id="0191e180-7d60-7000-aded-7d8b151cbd5b")
    _, _, data = built(c, json_answer("Message Accepted", [{"type": "msg"}]))
    [http] = data["http"]
    assert data["type"] == "msg_receive" and data["channel_uuid"] == CHANNEL.uuid
    assert http["url"] == f"https://edge.example/c/ex/{CHANNEL.uuid}/receive"
    assert http["request"].startswith(f"POST /c/ex/{CHANNEL.uuid}/receive HTTP/1.1\r\nhost: edge.example\r\n")
    assert http["request"].endswith("\r\n\r\nfrom=%2B250788383383&text=hi")
    assert http["response"].startswith("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    assert data["errors"] == [] and data["smpp"] == []


def test_an_error_log_keeps_the_errors_and_an_unknown_status_has_no_phrase():
    c = call(msg_id=12345, errors=["channel type wrong"])
    _, _, data = built(c, error_answer("channel type wrong", 400))
    assert data["errors"] == ["channel type wrong"] and data["msg_id"] == 12345
    _, _, odd = built(call(), Answer(599, b"", "text/plain"))
    assert odd["http"][0]["response"].startswith("HTTP/1.1 599 \r\n")


def test_secrets_are_masked_in_url_headers_and_body():
    register_secret("rcv-body-secret-1")
    c = call(
        query=b"secret=in-the-query&x=1",
        body=b"token=rcv-body-secret-1",
        headers=[(b"authorization", b"Basic dXNlcjpwYXNz"), (b"x-switchboard-secret", b"hdr-secret")],
    )
    _, body, data = built(c, json_answer("ok", []))
    for secret in (b"in-the-query", b"rcv-body-secret-1", b"dXNlcjpwYXNz", b"hdr-secret"):
        assert secret not in body
    assert data["http"][0]["url"].endswith(f"?secret={MASK}&x=1")
    assert f"authorization: {MASK}" in data["http"][0]["request"]


def test_an_id_beyond_64_bits_is_written_as_text():
    _, body, data = built(call(msg_id=2**70), json_answer("ok", []))
    assert data["msg_id"] == str(2**70)
    assert orjson.loads(body)["msg_id"] == str(2**70)


def test_a_utc_date_takes_the_short_path_to_the_same_answer_as_an_offset_one():
    for stamp in ("2017-06-23T12:30:00", "2017-06-23T12:30:00.5", "2012-04-23T18:25:43.511", "2024-02-29T23:59:59.999999999"):
        assert parse_date(stamp + "Z") == parse_date(stamp + "+00:00")
    assert parse_date("2012-04-23T18:25:43.511Z") == "2012-04-23T18:25:43.511Z"
    for bad in ("2023-02-29T10:00:00Z", "2017-13-01T00:00:00Z", "2017-06-23T24:00:00Z", "0000-01-01T00:00:00Z"):
        with pytest.raises(RequestError, match="invalid date format"):
            parse_date(bad)
