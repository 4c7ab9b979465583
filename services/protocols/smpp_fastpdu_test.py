"""The struct fast path of the hot PDUs against smpplib, its reference: the same bytes for
what is built, the same fields for what is parsed, and smpplib's answer (or error) for
everything the fast path hands over to it."""

from __future__ import annotations

import asyncio
import struct

import pytest
import smpplib.command

from services.protocols.smpp import (
    DeliverSm,
    PduError,
    SubmitSmResp,
    encode_deliver_sm_resp,
    encode_pdu,
    encode_submit_sm,
    format_receipt,
    make_pdu,
    make_response,
    parse_hot_pdu,
    parse_pdu,
    read_hot_pdu,
    split_message,
)

BASE = {"service_type": "", "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "250700000001",
        "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "250788123123", "registered_delivery": 1}  # fmt: skip
LONG = "Love is patient, love is kind. {}[]~€ " * 12

SUBMIT_CASES = [
    ("gsm single", {**BASE, **split_message("Love is patient.", 0)[0].pdu_fields()}),
    ("ucs2 single", {**BASE, **split_message("Привет 👋", 8)[0].pdu_fields()}),
    ("udh part", {**BASE, **split_message(LONG, 0, "udh", 77)[1].pdu_fields()}),
    ("udh16 part", {**BASE, **split_message(LONG, 0, "udh16", 3000)[0].pdu_fields()}),
    ("sar part", {**BASE, **split_message(LONG, 0, "sar", 513)[2].pdu_fields()}),
    ("payload", {**BASE, **split_message(LONG, 0, "payload")[0].pdu_fields()}),
    ("no receipt, alphanumeric source", {**BASE, "registered_delivery": 0, "source_addr_ton": 5, "source_addr_npi": 0,
                                          "source_addr": "Switchboard", "short_message": b"hi", "esm_class": 0,
                                          "data_coding": 0}),  # fmt: skip
    ("addresses over their maximum are cut", {**BASE, "source_addr": "1" * 30, "destination_addr": "2" * 25,
                                               "service_type": "WAPPUSH", "short_message": b"x"}),  # fmt: skip
    ("empty short_message", {**BASE, "short_message": b"", "esm_class": 0, "data_coding": 0}),
    ("every mandatory field set", {**BASE, "esm_class": 3, "protocol_id": 0x7F, "priority_flag": 2,
                                   "schedule_delivery_time": "260101120000000+", "validity_period": "000001000000000R",
                                   "replace_if_present_flag": 1, "data_coding": 3, "sm_default_msg_id": 9,
                                   "short_message": b"\xe9t\xe9"}),  # fmt: skip
    ("a TLV the fast path leaves to smpplib", {**BASE, "short_message": b"x", "user_message_reference": 7}),
    ("a non-ASCII address left to smpplib", {**BASE, "source_addr": "Café", "short_message": b"x"}),
]


@pytest.mark.parametrize("fields", [f for _, f in SUBMIT_CASES], ids=[label for label, _ in SUBMIT_CASES])
@pytest.mark.parametrize("sequence", [1, 0x12345678, 0x7FFFFFFF])
def test_submit_sm_bytes_equal_smpplib(fields, sequence):
    assert encode_submit_sm(sequence, fields) == encode_pdu(make_pdu("submit_sm", sequence=sequence, **fields))


def test_submit_sm_with_an_out_of_range_value_raises_smpplibs_error():
    with pytest.raises(ValueError, match="submit_sm"):
        encode_submit_sm(1, {**BASE, "short_message": b"x", "esm_class": 300})
    with pytest.raises(ValueError):
        encode_submit_sm(1, {**BASE, "no_such_field": 1})


@pytest.mark.parametrize("status", [0x00, 0x64, 0x0A])
@pytest.mark.parametrize("sequence", [1, 0x7FFFFFFF])
def test_deliver_sm_resp_bytes_equal_smpplib(status, sequence):
    request = make_pdu("deliver_sm", sequence=sequence, short_message=b"x")
    assert encode_deliver_sm_resp(sequence, status) == encode_pdu(make_response(request, status=status))


def _fields(pdu) -> dict:
    names = pdu.params.keys() if not isinstance(pdu, SubmitSmResp) else ("message_id",)
    out = {name: getattr(pdu, name) for name in names}
    out.update(command=pdu.command, status=pdu.status, sequence=pdu.sequence, unknown_tlvs=pdu.unknown_tlvs,
               response=pdu.is_response())  # fmt: skip
    return out


RECEIPT = format_receipt("6a1f0c", "DELIVRD", 0, "Love is patient.").encode()
DELIVER_CASES = [
    ("receipt, text only", {"esm_class": 0x04, "short_message": RECEIPT}),
    ("receipt with TLVs", {"esm_class": 0x04, "short_message": RECEIPT, "receipted_message_id": "6a1f0c",
                           "message_state": 2, "network_error_code": b"\x03\x00\x00"}),  # fmt: skip
    ("MO GSM", {"short_message": b"Hello there", "data_coding": 0, "source_addr": "250788123123",
                "destination_addr": "8080", "source_addr_ton": 1, "source_addr_npi": 1}),  # fmt: skip
    ("MO UDH part", {"esm_class": 0x40, "short_message": split_message(LONG, 0, "udh", 9)[1].short_message}),
    ("MO SAR part", {"short_message": b"part", "sar_msg_ref_num": 513, "sar_total_segments": 3,
                     "sar_segment_seqnum": 2}),  # fmt: skip
    ("MO message_payload, empty short_message", {"short_message": b"", "message_payload": LONG.encode("utf-8")}),
    ("UCS2 with every mandatory field", {"service_type": "CMT", "esm_class": 0, "protocol_id": 1, "priority_flag": 1,
                                         "registered_delivery": 0, "data_coding": 8,
                                         "short_message": "Привет".encode("utf-16-be")}),  # fmt: skip
]


@pytest.mark.parametrize("fields", [f for _, f in DELIVER_CASES], ids=[label for label, _ in DELIVER_CASES])
def test_deliver_sm_parses_like_smpplib(fields):
    data = encode_pdu(make_pdu("deliver_sm", sequence=4242, **fields))
    assert _fields(parse_hot_pdu(data)) == _fields(parse_pdu(data))


def test_the_fast_path_is_taken_for_the_usual_pdus():
    receipt = encode_pdu(make_pdu("deliver_sm", sequence=7, **DELIVER_CASES[1][1]))
    resp = encode_pdu(make_pdu("submit_sm_resp", sequence=8, message_id="abc"))
    assert type(parse_hot_pdu(receipt)) is DeliverSm
    assert type(parse_hot_pdu(resp)) is SubmitSmResp
    assert isinstance(parse_hot_pdu(encode_pdu(make_pdu("enquire_link", sequence=9))), smpplib.command.EnquireLink)


def _tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def _frame(command_id: int, body: bytes, sequence: int = 5, status: int = 0) -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command_id, status, sequence) + body


DELIVER_BODY = b"\0" + b"\1\1" + b"250788123123\0" + b"\1\1" + b"8080\0" + b"\4\0\0" + b"\0\0" + b"\1\0\0\0" + b"\3abc"
RAW_DELIVER_CASES = [
    ("receipted_message_id without its NUL", _frame(5, DELIVER_BODY + _tlv(0x001E, b"6a1f0c") + _tlv(0x0427, b"\2"))),
    ("unknown TLV kept", _frame(5, DELIVER_BODY + _tlv(0x1401, b"vendor"))),
    ("two-octet message_state", _frame(5, DELIVER_BODY + _tlv(0x0427, b"\0\2"))),
]


@pytest.mark.parametrize("data", [d for _, d in RAW_DELIVER_CASES], ids=[label for label, _ in RAW_DELIVER_CASES])
def test_raw_deliver_sm_parses_like_our_smpplib_path(data):
    assert _fields(parse_hot_pdu(data)) == _fields(parse_pdu(data))


SUBMIT_RESP_CASES = [
    ("hex id", encode_pdu(make_pdu("submit_sm_resp", sequence=3, message_id="0A1B2C"))),
    ("empty id", encode_pdu(make_pdu("submit_sm_resp", sequence=3, message_id=""))),
    ("error with a body", encode_pdu(make_pdu("submit_sm_resp", sequence=3, status=0x58, message_id=""))),
    ("error without a body", _frame(0x80000004, b"", status=0x45)),
]


@pytest.mark.parametrize("data", [d for _, d in SUBMIT_RESP_CASES], ids=[label for label, _ in SUBMIT_RESP_CASES])
def test_submit_sm_resp_parses_like_smpplib(data):
    assert _fields(parse_hot_pdu(data)) == _fields(parse_pdu(data))


MALFORMED = [
    ("deliver_sm cut in the middle", _frame(5, DELIVER_BODY[:20])),
    ("sm_length beyond the body", _frame(5, DELIVER_BODY[:-3] + b"\x09abc")),
    ("truncated TLV", _frame(5, DELIVER_BODY + b"\x04\x27\x00")),
    ("submit_sm_resp id without NUL", _frame(0x80000004, b"abc")),
    ("command_length lies", _frame(5, DELIVER_BODY)[:-1]),
]


@pytest.mark.parametrize("data", [d for _, d in MALFORMED], ids=[label for label, _ in MALFORMED])
def test_malformed_pdus_get_smpplib_paths_error(data):
    with pytest.raises(PduError) as expected:
        parse_pdu(data)
    with pytest.raises(PduError) as got:
        parse_hot_pdu(data)
    assert (got.value.status, got.value.sequence, str(got.value)) == (
        expected.value.status, expected.value.sequence, str(expected.value))  # fmt: skip


async def test_read_hot_pdu_frames_and_rejects_bogus_lengths():
    reader = asyncio.StreamReader()
    receipt = encode_pdu(make_pdu("deliver_sm", sequence=11, **DELIVER_CASES[0][1]))
    reader.feed_data(receipt + struct.pack(">L", 3))
    reader.feed_eof()
    pdu = await asyncio.wait_for(read_hot_pdu(reader), 1)
    assert (pdu.command, pdu.sequence, pdu.short_message) == ("deliver_sm", 11, RECEIPT)
    with pytest.raises(PduError, match="bogus command_length"):
        await asyncio.wait_for(read_hot_pdu(reader), 1)
