"""The pure parts of the CIMD2 connector: SendRequest -> 03 parts, responses and 20/23 ->
meaning. Packets from SMSC_PROTOCOLS.md section 5 where it has them."""

from __future__ import annotations

import pytest

from services.core.channels import Cimd2Connection
from services.core.models import SendRequest
from services.protocols import cimd2
from services.smsc.connector import UnsendableMessage, recipient_key

from .connector import incoming_of, report_of, submit_outcome, submit_parts

CH = "a86f686f-9168-4dd9-a03e-77f11b265b56"
CONN = Cimd2Connection(name="c", protocol="cimd2", host="127.0.0.1", port=9971)


def req(text="hi", to="+250788123123", **kw) -> SendRequest:
    return SendRequest(id=1, channel_uuid=CH, to=to, text=text, **kw)


def wire(part, number=5) -> cimd2.Packet:
    to, sender, params, reports = part
    return cimd2.decode_packet(cimd2.encode_packet(cimd2.submit(number, to, sender, params, status_report=reports)))


def test_kannels_submit_byte_for_byte():
    (part,) = submit_parts(CONN.model_copy(update={"registered_delivery": False}), "ALPHA", req("@$_é€[", to="0612345678"), 1)
    expected = b"\x0203:005\t021:0612345678\t027:ALPHA\t056:0\t055:0\t044:0\t033:_Oa$_--_e'_XXe_XX<\tF4\x03"
    to, sender, params, reports = part
    assert cimd2.encode_packet(cimd2.submit(5, to, sender, params, status_report=reports)) == expected


@pytest.mark.parametrize(
    ("address", "text", "sender", "parts", "dcs"),
    [
        ("+250700000001", "Hello world", (23, "250700000001"), 1, None),
        ("Switchboard", "Привет", (27, "Switchboard"), 1, "8"),
        ("1234", "{}" * 70, (23, "1234"), 2, None),  # every brace is an escape pair: 280 septets
        ("1234", "😀" * 40, (23, "1234"), 2, "8"),
    ],
)  # fmt: skip
def test_parts_carry_the_sender_the_coding_and_the_concatenation(address, text, sender, parts, dcs):
    built = submit_parts(CONN, address, req(text), 7)
    assert len(built) == parts
    for seq, part in enumerate(built, 1):
        packet = wire(part)
        assert packet.get(21) == "250788123123" and (sender[0], packet.get(sender[0])) == sender
        assert (packet.get(56), packet.get(30), packet.get(44)) == ("14", dcs, "1" if seq < parts else "0")
        assert packet.get(32) == (f"050003070{parts}0{seq}" if parts > 1 else None)
    assert "".join(cimd2.read_user_data(wire(p)).text for p in built) == text


def test_bad_requests_are_refused():
    with pytest.raises(UnsendableMessage, match="phone numbers"):
        submit_parts(CONN, "1234", req(to="ext:abc"), 1)
    with pytest.raises(UnsendableMessage, match="no address"):
        submit_parts(CONN, " ", req(), 1)


PART = ("0612345678", "1234", [], 14)


@pytest.mark.parametrize(
    ("answer", "message_id", "code", "throttled"),
    [
        (b"\x0253:003\t021:0612345678\t060:261201212133\t51\x03", "0612345678:261201212133", None, False),
        (cimd2.encode_packet(cimd2.Packet(53, 3, ((900, "300"), (901, "no destination")))), None, "cimd2_300", False),
        (cimd2.encode_packet(cimd2.Packet(53, 3, ((900, "10"),))), None, "cimd2_10", True),
        (cimd2.encode_packet(cimd2.Packet(53, 3, ((900, "4"),))), None, "cimd2_4", True),
        (cimd2.encode_packet(cimd2.nack(3)), None, "cimd2_nack", True),
    ],
)  # fmt: skip
def test_submit_responses(answer, message_id, code, throttled):
    outcome = submit_outcome(PART, cimd2.decode_packet(answer), 2.0)
    assert (outcome.message_id, outcome.code, outcome.throttled) == (message_id, code, throttled)


def test_the_response_and_the_status_report_find_the_same_key():
    ok = submit_outcome(PART, cimd2.decode_packet(b"\x0253:003\t021:0612345678\t060:261201212133\t51\x03"), 1.0)
    report = report_of(cimd2.status_report(2, "31612345678", "261201212133", 4, "261201212201"))
    assert report.keys == [recipient_key(*ok.message_id.split(":"))] == ["2345678:261201212133"]
    assert (report.status, report.code, report.external_id) == ("delivered", None, "31612345678:261201212133")


@pytest.mark.parametrize(("code", "status", "error"), [(4, "delivered", None), (1, "sent", None), (2, "failed", "dlr_2"),
                                                       (3, "failed", "dlr_3"), (9, "failed", "dlr_9")])  # fmt: skip
def test_status_report_codes(code, status, error):
    report = report_of(cimd2.status_report(2, "0612345678", "261201212201", code, "261201212201", error=27))
    assert (report.status, report.code) == (status, error) and report.summary["error"] == "27"


def test_a_status_report_that_reports_nothing():
    assert report_of(cimd2.status_report(2, "0612345678", "261201212201", 0, "261201212201")) is None


def test_kannels_mo_is_read():
    packet = cimd2.decode_packet(b"\x0220:000\t021:1234\t023:447700900123\t060:261201212156\t033:Hi _Oa there\t3B\x03")
    incoming = incoming_of(packet)
    assert (incoming.source, incoming.destination, incoming.sender, incoming.text) == ("447700900123", "1234", "447700900123", "Hi @ there")
    parts = [incoming_of(cimd2.deliver_message(n * 2, "1234", "0025078", "261201212156", p))
             for n, p in enumerate(cimd2.message_params("😀" * 40, 5))]  # fmt: skip
    assert [p.part[:3] for p in parts] == [("udh:5:2", 1, 2), ("udh:5:2", 2, 2)] and parts[0].sender == "+25078"
