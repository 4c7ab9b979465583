"""The pure parts of the UCP connector: SendRequest -> OT 51 parts, results and OT 52/53 ->
meaning. Frames from SMSC_PROTOCOLS.md section 5 where it has them."""

from __future__ import annotations

import pytest

from services.core.channels import UcpConnection
from services.core.models import SendRequest
from services.protocols import ucp
from services.smsc.connector import UnsendableMessage, recipient_key

from .connector import incoming_of, report_of, submit_outcome, submit_parts

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"
CONN = UcpConnection(name="u", protocol="ucp", host="127.0.0.1", port=5000)


def req(text="hi", to="+250788123123", **kw) -> SendRequest:
    return SendRequest(id=1, channel_uuid=CH, to=to, text=text, **kw)


def frame(text: str) -> ucp.Frame:
    return ucp.decode_frame(text.encode("latin-1"))


@pytest.mark.parametrize(
    ("address", "text", "oadc", "otoa", "mt", "parts"),
    [
        ("ALPHA", "Hello world", "094126141904", "5039", "3", 1),
        ("+250700000001", "Hello world", "250700000001", "1139", "3", 1),
        ("Switchboard", "Привет", "14D37B9A3E468BDF613919", "5039", "4", 1),
        ("1234", "€" * 100, "1234", "1139", "3", 2),  # the euro is an escape pair: 200 septets
        ("1234", "😀" * 40, "1234", "1139", "4", 2),  # 80 UTF-16 units
    ],
)  # fmt: skip
def test_parts_carry_the_address_the_coding_and_the_concatenation(address, text, oadc, otoa, mt, parts):
    built = submit_parts(CONN, address, req(text), 7)
    assert len(built) == parts
    for seq, (to, sender, fields, notify) in enumerate(built, 1):
        wire = ucp.fields_5x(ucp.decode_frame(ucp.encode_frame(ucp.submit(3, to, sender, fields, notify=notify))))
        assert (wire["AdC"], wire["OAdC"], wire["OTOA"], wire["MT"]) == ("250788123123", oadc, otoa, mt)
        assert (wire["NRq"], wire["NT"]) == ("1", "3")
        udh = f"0106050003070{parts}0{seq}" if parts > 1 else ""
        assert wire["XSer"] == udh + ("020108" if mt == "4" else "")
    joined = "".join(ucp.read_user_data(ucp.fields_5x(ucp.submit(1, *p[:3]))).text for p in built)
    assert joined == text


def test_no_notification_without_registered_delivery_and_bad_requests_refused():
    (part,) = submit_parts(CONN.model_copy(update={"registered_delivery": False}), "1234", req(), 1)
    assert part[3] == 0
    with pytest.raises(UnsendableMessage, match="phone numbers"):
        submit_parts(CONN, "1234", req(to="ext:abc"), 1)
    with pytest.raises(UnsendableMessage, match="empty sender"):
        submit_parts(CONN, "", req(), 1)


PART = ("0612345678", "ALPHA", {"MT": "3"}, 3)


@pytest.mark.parametrize(
    ("result", "message_id", "code", "throttled"),
    [
        ("01/00043/R/51/A//0612345678:011226212051/35", "0612345678:011226212051", None, False),
        ("00/00022/R/51/N/31//07", None, "ucp_31", False),
        (ucp.encode_frame(ucp.nack(ucp.Frame(7, "O", 51), "04"))[1:-1].decode(), None, "ucp_04", True),
    ],
)  # fmt: skip
def test_submit_results(result, message_id, code, throttled):
    outcome = submit_outcome(PART, frame(result), 1.5)
    assert (outcome.message_id, outcome.code, outcome.throttled) == (message_id, code, throttled)
    assert outcome.summary["trn"] == frame(result).trn and outcome.summary["destination"] == "0612345678"


def test_the_ack_and_the_notification_find_the_same_key():
    ack = submit_outcome(PART, frame("01/00043/R/51/A//0612345678:011226212051/35"), 1.0)
    adc, scts = ucp.split_adc_scts(ack.message_id)
    notification = ucp.notification(4, "ALPHA", "0031612345678", "011226212051", 0, "000", "011226212101", "delivered")
    report = report_of(notification, ucp.fields_5x(notification))
    assert report.keys == [recipient_key(adc, scts)] == ["2345678:011226212051"]
    assert (report.status, report.code) == ("delivered", None)


def test_notification_statuses_from_the_spec_example():
    spec = frame("00/00234/O/53/1299998/3155555/////////////090196161057/1/108/090196161105/3//"
                 "4D65737361676520666F7220333135353535352C2077697468206964656E74696669636174696F6E20"
                 "39363031303931363130353720686173206265656E206275666665726564/////////////1F")  # fmt: skip
    report = report_of(spec, ucp.fields_5x(spec))
    assert (report.status, report.code, report.keys) == ("sent", None, ["3155555:090196161057"])
    failed = ucp.notification(5, "1234", "250788123123", "011226212051", 2, "108")
    assert (report_of(failed, ucp.fields_5x(failed)).status, report_of(failed, ucp.fields_5x(failed)).code) == ("failed", "dlr_108")


@pytest.mark.parametrize(
    ("oadc", "otoa", "sender", "source"),
    [
        ("07686745", "", "07686745", "07686745"),
        ("447700900123", "1139", "+447700900123", "447700900123"),
        ("00250788555002", "", "+250788555002", "00250788555002"),
        ("094126141904", "5039", "ALPHA", "ALPHA"),  # Kannel's length convention
        ("0ED6773E7C2ECB1B", "5039", "Voyager", "Voyager"),  # go-gsm's 2 * octets
    ],
)  # fmt: skip
def test_incoming_originator_in_either_convention(oadc, otoa, sender, source):
    mo = ucp.op_5x(1, ucp.OT_MO, AdC="1234", OAdC=oadc, OTOA=otoa, SCTS="120396111055", MT="3",
                   Msg=b"Call you back later.".hex().upper())  # fmt: skip
    incoming = incoming_of(mo, ucp.fields_5x(mo))
    assert (incoming.sender, incoming.source, incoming.destination) == (sender, source, "1234")
    assert incoming.text == "Call you back later." and incoming.part is None


def test_incoming_part_keeps_its_coding_for_reassembly():
    first, second = ucp.message_fields("😀" * 40, 9)
    parts = [incoming_of(f, ucp.fields_5x(f)) for f in (ucp.mo(1, "1234", "250788", "120396111055", p) for p in (first, second))]
    assert [p.part[:3] for p in parts] == [("udh:9:2", 1, 2), ("udh:9:2", 2, 2)]
    assert all(p.part[3][0] == 8 for p in parts)
