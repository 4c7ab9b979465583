"""The External door's pure knowledge (CONTRACT section 10): courier's EX send request and callbacks."""

from __future__ import annotations

import pytest

from . import external_door as ex

UUID = "0191e180-7d60-7000-aded-7d8b151cbd5b"


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"id": "10", "text": "hi", "to": "+250788", "from": "2020", "channel": "4"}, ex.ExSend("10", "+250788", "hi", "2020")),
        ({"id": 10, "text": "hi", "to": "+250788"}, ex.ExSend(10, "+250788", "hi")),  # JSON number stays a number
        ({"uuid": UUID, "text": "hi", "to": " +250788 "}, ex.ExSend(UUID, "+250788", "hi")),
        ({"id": "", "uuid": UUID, "text": "hi", "to": "+250788"}, ex.ExSend(UUID, "+250788", "hi")),
        ({"text": "hi", "to": "+250788"}, "parameters id or uuid should not be empty"),
        ({"id": True, "text": "hi", "to": "+250788"}, "parameters id or uuid should not be empty"),
        ({"id": "1", "text": "hi"}, "field 'to' required"),
        ({"id": "1", "text": "hi", "to": 250788}, "field 'to' required"),
        ({"id": "1", "to": "+250788"}, "field 'text' required"),
        ({"id": "1", "text": ["a"], "to": "+250788"}, "field 'text' must be a string"),
    ],
)
def test_read_send(params, expected):
    assert ex.read_send(params) == expected


def test_callbacks():
    assert ex.status_form("4521") == {"id": "4521"}
    assert ex.status_form(UUID) == {"id": UUID, "uuid": UUID}
    assert ex.ref_text(98765) == "98765"
    assert [ex.status_action(s, frozenset()) for s in ("queued", "wired", "sent", "delivered", "errored", "failed")] == [
        None, "sent", "sent", "delivered", None, "failed"]
    assert ex.status_action("sent", frozenset({"sent"})) is None  # /sent once, for wired or sent
    assert ex.receive_form("+250788", "hé", "2026-11-24T10:00:00.000Z") == {"from": "+250788", "text": "hé", "date": "2026-11-24T10:00:00.000Z"}
