"""The pure parts of the connector: SendRequest -> submit_sm fields, deliver_sm -> meaning."""

from __future__ import annotations

import pytest

from services.core.channels import SmppChannel, SmppConnection
from services.core.models import SendRequest

from ..protocols.smpp import make_pdu
from ..smsc.connector import channel_for
from ..smsc.link import backoff
from .incoming import Receipt, receipt_of, receipt_status, sender_number
from .outgoing import UnsendableMessage, build_submits, message_text

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"


def conn(**kw) -> SmppConnection:
    return SmppConnection(name="c", host="127.0.0.1", system_id="s", **kw)


def req(text="hi", to="+250788123123", **kw) -> SendRequest:
    return SendRequest(id=1, channel_uuid=CH, to=to, text=text, **kw)


def test_addresses_lose_their_plus_and_the_source_ton_is_detected():
    (part,) = build_submits(conn(), "+250700000001", req(to="tel:+250788123123"), 7).parts
    assert (part["destination_addr"], part["dest_addr_ton"], part["dest_addr_npi"]) == ("250788123123", 1, 1)
    assert (part["source_addr"], part["source_addr_ton"], part["source_addr_npi"]) == ("250700000001", 1, 1)
    assert build_submits(conn(), "Brand", req(), 1).parts[0]["source_addr_ton"] == 5
    assert build_submits(conn(), "1234", req(), 1).parts[0]["source_addr_ton"] == 3
    assert build_submits(conn(source_ton=0, source_npi=9), "+2507", req(), 1).parts[0]["source_addr_npi"] == 9


def test_reference_and_split_mode_come_from_the_caller_and_the_connection():
    parts = build_submits(conn(), "1234", req("a" * 200), 300).parts
    assert [p["short_message"][:6] for p in parts] == [bytes([5, 0, 3, 300 & 0xFF, 2, i]) for i in (1, 2)]
    sar = build_submits(conn(long_messages="sar"), "1234", req("a" * 200), 300).parts
    assert [p["sar_msg_ref_num"] for p in sar] == [300, 300] and sar[0]["esm_class"] == 0


def test_attachments_are_appended_and_bad_requests_are_refused():
    assert message_text(req("see", attachments=["image/jpeg:https://x.example/a.jpg"])) == "see\nhttps://x.example/a.jpg"
    with pytest.raises(UnsendableMessage, match="phone numbers"):
        build_submits(conn(), "1234", req(to="ext:abc"), 1)
    with pytest.raises(UnsendableMessage, match="255"):
        build_submits(conn(), "1234", req("x" * 160 * 300), 1)


def deliver(**kw):
    return make_pdu("deliver_sm", sequence=1, **kw)


def test_receipts_from_tlvs_and_from_text():
    tlv = deliver(esm_class=4, receipted_message_id="1A2B", message_state=5, short_message=b"id:zzz stat:DELIVRD")
    assert receipt_of(tlv) == Receipt("1A2B", "UNDELIV", None)
    text = deliver(esm_class=4, short_message=b"id:0042 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:hi")
    assert receipt_of(text) == Receipt("0042", "DELIVRD", "000")
    assert receipt_of(deliver(esm_class=0, short_message=b"id:1 stat:DELIVRD")) is None
    assert receipt_of(deliver(esm_class=4, short_message=b"garbage")) == Receipt(None, "UNKNOWN", None)


def test_receipt_status_mapping():
    assert receipt_status("DELIVRD") == ("delivered", None)
    assert receipt_status("ENROUTE") == receipt_status("ACCEPTD") == ("sent", None)
    for stat in ("UNDELIV", "REJECTD", "EXPIRED", "DELETED", "UNKNOWN"):
        assert receipt_status(stat) == ("failed", f"dlr_{stat}")


def test_incoming_channel_and_sender():
    a = SmppChannel(uuid=CH, type="smpp", connection="c", address="+250700000001")
    b = SmppChannel(uuid="0b1e0000-0000-4000-8000-000000000000", type="smpp", connection="c", address="250700000002")
    assert channel_for([a, b], "+250700000002") is b and channel_for([a, b], "250700000001") is a
    assert channel_for([a, b], "999") is a and channel_for([], "999") is None
    assert sender_number(deliver(source_addr="250788123123", source_addr_ton=1)) == "+250788123123"
    assert sender_number(deliver(source_addr="0788123123", source_addr_ton=2)) == "0788123123"


def test_backoff_follows_the_schedule_with_jitter():
    for failures, base in ((1, 1), (2, 2), (3, 5), (9, 5)):
        assert 0.8 * base <= backoff([1, 2, 5], failures) <= 1.2 * base
