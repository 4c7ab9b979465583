"""The models and schemas/*.json agree: the files are generated from the models, and a corpus
of good and bad documents gets the same verdict from both."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.core.models import ChannelEvent, ChannelLog, InboundMessage, SendRequest, StatusUpdate
from services.core.schemas import SCHEMA_DIR, generate, render
from tests.helpers import validator

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"


def test_schema_files_are_generated_from_the_models():
    for name, schema in generate().items():
        assert (SCHEMA_DIR / f"{name}.json").read_bytes() == render(schema), f"schemas/{name}.json is stale: run make schemas"


SEND_CASES = [
    ("brief example", {"id": 1241244, "channel_uuid": CH, "to": "+250788123123", "text": "Love is patient."}, True),
    ("string id and urn", {"id": "m-1", "channel_uuid": CH, "to": "tel:+250788123123", "text": "hi"}, True),
    ("ext urn", {"id": 1, "channel_uuid": CH, "to": "ext:abc", "text": "hi"}, True),
    ("unknown fields kept", {"id": 1, "channel_uuid": CH, "to": "250788", "text": "x", "flow": {"a": 1}}, True),
    ("missing id", {"channel_uuid": CH, "to": "+250788123123", "text": "hi"}, False),
    ("missing to", {"id": 1, "channel_uuid": CH, "text": "hi"}, False),
    ("missing channel", {"id": 1, "to": "+250788123123", "text": "hi"}, False),
    ("to not a number", {"id": 1, "channel_uuid": CH, "to": "hello world", "text": "hi"}, False),
    ("channel not a uuid", {"id": 1, "channel_uuid": "abc", "to": "+250788123123", "text": "hi"}, False),
    ("id is a list", {"id": [1], "channel_uuid": CH, "to": "+250788123123", "text": "hi"}, False),
]


@pytest.mark.parametrize("label,doc,ok", SEND_CASES, ids=[c[0] for c in SEND_CASES])
def test_send_request_model_and_schema_agree(label, doc, ok):
    schema_ok = validator("send_request").is_valid(doc)
    try:
        SendRequest.model_validate(doc)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (schema_ok, model_ok) == (ok, ok)


def test_empty_text_needs_attachments():
    with pytest.raises(ValidationError):
        SendRequest.model_validate({"id": 1, "channel_uuid": CH, "to": "+250788123123", "text": ""})
    SendRequest.model_validate({"id": 1, "channel_uuid": CH, "to": "+250788123123", "text": "", "attachments": ["image/jpeg:https://x/a.jpg"]})


def test_unknown_fields_survive_a_round_trip():
    raw = b'{"id": 7, "channel_uuid": "%s", "to": "+250788123123", "text": "x", "flow": {"uuid": "f"}}' % CH.encode()
    again = SendRequest.from_bytes(SendRequest.from_bytes(raw).to_bytes())
    assert again.model_extra == {"flow": {"uuid": "f"}} and again.id == 7


@pytest.mark.parametrize(
    "name,body",
    [
        ("status_update", StatusUpdate(id=1241244, channel_uuid=CH, status="wired", external_id="SM1", transport="external", attempt=1)),
        ("status_update", StatusUpdate(id="x", channel_uuid=CH, status="errored", error={"code": "connection_failed", "message": "", "retry_in_ms": 5000})),
        ("inbound_message", InboundMessage(channel_uuid=CH, urn="tel:+250788123123", **{"from": "+250788123123"}, text="hi", transport="external")),
        ("channel_event", ChannelEvent(channel_uuid=CH, event_type="stop_contact", urn="tel:+250788123123")),
        ("channel_log", ChannelLog(channel_uuid=CH, type="msg_send", msg_id=1, http=[{"url": "http://x", "method": "POST", "status": 200}])),
    ],
)
def test_published_bodies_validate(name, body):
    assert validator(name).is_valid(__import__("orjson").loads(body.to_bytes()))


@pytest.mark.parametrize(
    "name,doc",
    [
        ("status_update", {"id": 1, "uuid": None, "channel_uuid": CH, "status": "lost", "external_id": None, "transport": None, "attempt": None, "error": None, "timestamp": "t"}),
        ("inbound_message", {"uuid": "u", "channel_uuid": CH, "urn": "tel:+1", "text": "", "attachments": [], "received_on": "t", "external_id": None, "transport": "x"}),
        ("channel_event", {"uuid": "u", "channel_uuid": CH, "event_type": "new_conversation", "urn": "tel:+1", "occurred_on": "t"}),
    ],
)
def test_bad_bodies_fail_schema(name, doc):
    assert not validator(name).is_valid(doc)
