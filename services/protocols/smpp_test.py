"""Unit tests of the SMPP codec (no I/O except an in-memory StreamReader)."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime

import pytest

from services.protocols import smpp as codec
from services.protocols.smpp import (
    PduError,
    Reassembler,
    UnknownPdu,
    choose_coding,
    decode_text,
    encode_pdu,
    encode_text,
    extract_segment,
    format_receipt,
    join_segments,
    make_pdu,
    make_response,
    normalise_message_id,
    parse_pdu,
    parse_receipt,
    parse_udh,
    read_pdu,
    receipt_id_keys,
    source_ton_npi,
    split_message,
    status_code,
    status_name,
)
from services.protocols.gsm import gsm_decode, gsm_encode, septet_count

# ------------------------------------------------------------------ GSM and text coding

GSM_CASES = [
    ("plain ascii", "Hello", b"Hello", 5),
    ("at sign is 0x00", "@", b"\x00", 1),
    ("pound dollar yen", "£$¥", b"\x01\x02\x03", 3),
    ("section sign 0x5F", "§", b"\x5f", 1),
    ("inverted question 0x60", "¿", b"\x60", 1),
    ("currency sign 0x24", "¤", b"\x24", 1),
    ("greek", "ΔΩ", b"\x10\x15", 2),
    ("euro is escaped", "€", b"\x1b\x65", 2),
    ("braces", "{}", b"\x1b\x28\x1b\x29", 4),
    ("brackets tilde backslash pipe caret", "[]~\\|^", b"\x1b\x3c\x1b\x3e\x1b\x3d\x1b\x2f\x1b\x40\x1b\x14", 12),
    ("form feed", "\x0c", b"\x1b\x0a", 2),
    ("newline and cr", "a\nb\r", b"a\nb\r", 4),
]


@pytest.mark.parametrize("label,text,wire,septets", GSM_CASES, ids=[c[0] for c in GSM_CASES])
def test_gsm_encode_decode(label, text, wire, septets):
    assert gsm_encode(text) == wire
    assert encode_text(text, 0) == wire
    assert gsm_decode(wire) == text
    assert septet_count(text) == septets


@pytest.mark.parametrize("text", ["`", "ç", "😀", "Ж", "\x1b"])
def test_gsm_rejects_characters_outside_the_alphabet(text):
    assert septet_count(text) is None
    with pytest.raises(ValueError):
        gsm_encode(text)


DECODE_CASES = [
    ("gsm unpacked", b"Hi \x1b\x65", 0, "Hi €"),
    ("gsm unknown escape gives basic char", b"\x1b\x41", 0, "A"),
    ("gsm trailing escape dropped", b"ab\x1b", 0, "ab"),
    ("gsm with high octets falls back to latin1", b"caf\xe9", 0, "café"),
    ("ia5", b"hello", 1, "hello"),
    ("latin1", "café ñ".encode("latin-1"), 3, "café ñ"),
    ("ucs2 bmp", "Привет".encode("utf-16-be"), 8, "Привет"),
    ("ucs2 surrogate pair", "😀".encode("utf-16-be"), 8, "😀"),
    ("ucs2 odd length does not raise", b"\x00a\x00", 8, "a\ufffd"),
    ("binary 4 as latin1", b"\xff\x00", 4, "\xff\x00"),
    ("binary 2 as latin1", b"\x41", 2, "A"),
    ("dcs class 0xF0 gsm", b"Hi", 0xF0, "Hi"),
    ("dcs 0x18 ucs2", "é".encode("utf-16-be"), 0x18, "é"),
    ("unknown coding utf8 best effort", "ü".encode(), 0x0E, "ü"),
    ("unknown coding invalid utf8", b"\xff", 0x0E, "\xff"),
    ("empty", b"", 8, ""),
]


@pytest.mark.parametrize("label,payload,dc,expected", DECODE_CASES, ids=[c[0] for c in DECODE_CASES])
def test_decode_text(label, payload, dc, expected):
    assert decode_text(payload, dc) == expected


CHOOSE_CASES = [
    ("gsm text, default gsm7", "Hello {world}", "gsm7", 0),
    ("latin1-only char falls back to ucs2", "ça va", "gsm7", 8),
    ("emoji -> ucs2", "hi 😀", "gsm7", 8),
    ("default latin1 keeps latin1", "ça va", "latin1", 3),
    ("default latin1, euro not latin1 but gsm", "5 €", "latin1", 0),
    ("default latin1, cyrillic -> ucs2", "Привет", "latin1", 8),
    ("default ucs2 stays ucs2", "Hello", "ucs2", 8),
    ("int default", "Hello", 0, 0),
]


@pytest.mark.parametrize("label,text,default,dc", CHOOSE_CASES, ids=[c[0] for c in CHOOSE_CASES])
def test_choose_coding(label, text, default, dc):
    got_dc, payload = choose_coding(text, default)
    assert got_dc == dc
    assert decode_text(payload, got_dc) == text


def test_encode_text_refuses_what_does_not_fit():
    with pytest.raises(ValueError):
        encode_text("😀", 3)
    with pytest.raises(ValueError):
        encode_text("x", 0x42)
    with pytest.raises(ValueError):
        codec.coding_value("utf8")


# ------------------------------------------------------------------ splitting

def _reassemble(parts):
    segments = []
    for part in parts:
        pdu = make_pdu("submit_sm", source_addr="1", destination_addr="2", **part.pdu_fields())
        segments.append(extract_segment(parse_pdu(encode_pdu(pdu))))
    return segments


SPLIT_CASES = [
    # label, text, coding, mode, expected part count
    ("160 gsm fits one", "a" * 160, 0, "udh", 1),
    ("161 gsm -> 2", "a" * 161, 0, "udh", 2),
    ("80 euros = 160 septets fit one", "€" * 80, 0, "udh", 1),
    ("81 euros -> 2", "€" * 81, 0, "udh", 2),
    ("306 gsm -> 2 parts of 153", "a" * 306, 0, "udh", 2),
    ("307 gsm -> 3", "a" * 307, 0, "udh", 3),
    ("70 ucs2 fits one", "Ж" * 70, 8, "udh", 1),
    ("71 ucs2 -> 2", "Ж" * 71, 8, "udh", 2),
    ("134 ucs2 -> 2 parts of 67", "Ж" * 134, 8, "udh", 2),
    ("140 latin1 fits", "é" * 140, 3, "udh", 1),
    ("268 latin1 -> 2 of 134", "é" * 268, 3, "udh", 2),
    ("sar same limits", "a" * 307, 0, "sar", 3),
    ("udh16 152 septets per part", "a" * 304, 0, "udh16", 2),
    ("udh16 305 -> 3", "a" * 305, 0, "udh16", 3),
    ("payload is one part", "a" * 1000, 0, "payload", 1),
    ("empty text one part", "", 0, "udh", 1),
]


@pytest.mark.parametrize("label,text,dc,mode,count", SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES])
def test_split_counts_and_roundtrip(label, text, dc, mode, count):
    parts = split_message(text, dc, mode, ref=0x1234)
    assert len(parts) == count
    segments = _reassemble(parts)
    assert join_segments(segments) == text
    if count > 1 and mode != "payload":
        assert [s.seq for s in segments] == list(range(1, count + 1))
        assert {s.total for s in segments} == {count}


def test_split_long_gsm_never_cuts_an_escape():
    text = ("Price {10}€ [ok] ~x~ |a|\\b^ " * 30)[:500]
    parts = split_message(text, "gsm7", "udh", ref=200)
    assert len(parts) > 3
    for part in parts:
        assert part.esm_class == 0x40
        ref, total, seq, payload = parse_udh(part.short_message)
        assert (ref, total) == (200, len(parts))
        assert len(payload) <= 153  # unpacked: one octet per septet
        assert payload[-1] != 0x1B  # no dangling escape at the end of a part
        gsm_decode(payload)  # each part decodes on its own
        assert encode_text(gsm_decode(payload), 0) == payload
    assert "".join(gsm_decode(parse_udh(p.short_message)[3]) for p in parts) == text


def test_split_ucs2_never_cuts_a_surrogate_pair():
    text = "ok 😀 " * 60  # 6 UTF-16 units per repetition
    parts = split_message(text, "ucs2", "udh", ref=9)
    assert len(parts) > 1
    pieces = []
    for part in parts:
        payload = parse_udh(part.short_message)[3]
        assert len(payload) <= 134
        first, last = struct.unpack(">H", payload[:2])[0], struct.unpack(">H", payload[-2:])[0]
        assert not 0xDC00 <= first <= 0xDFFF, "part starts with a low surrogate"
        assert not 0xD800 <= last <= 0xDBFF, "part ends with a high surrogate"
        pieces.append(payload.decode("utf-16-be"))  # strict: would raise on a cut pair
    assert "".join(pieces) == text


def test_split_modes_shape():
    text = "b" * 200
    udh = split_message(text, 0, "udh", ref=0x1FF)
    assert udh[0].short_message[:6] == bytes([5, 0, 3, 0xFF, 2, 1])
    udh16 = split_message(text, 0, "udh16", ref=0x1FF)
    assert udh16[1].short_message[:7] == bytes([6, 8, 4, 0x01, 0xFF, 2, 2])
    sar = split_message(text, 0, "sar", ref=0x1FF)
    assert sar[0].esm_class == 0 and sar[0].tlvs == {
        "sar_msg_ref_num": 0x1FF, "sar_total_segments": 2, "sar_segment_seqnum": 1}
    payload = split_message(text, 0, "payload")
    assert payload[0].short_message == b"" and payload[0].tlvs["message_payload"] == b"b" * 200


def test_split_too_many_parts():
    with pytest.raises(ValueError):
        split_message("a" * (153 * 256), 0, "udh")
    with pytest.raises(ValueError):
        split_message("x", 0, "bogus")


# ------------------------------------------------------------------ UDH and segments

UDH_CASES = [
    ("8-bit ref", bytes([5, 0, 3, 0xAB, 3, 2]) + b"xyz", (0xAB, 3, 2, b"xyz")),
    ("16-bit ref", bytes([6, 8, 4, 0x12, 0x34, 4, 4]) + b"q", (0x1234, 4, 4, b"q")),
    ("other IE first", bytes([9, 0x24, 1, 0x00, 0, 3, 7, 2, 1, 0]) + b"w", (7, 2, 1, b"w")),
    ("no concat IE", bytes([3, 0x24, 1, 0x00]) + b"hi", (None, 1, 1, b"hi")),
    ("empty udh", bytes([0]) + b"hi", (None, 1, 1, b"hi")),
]


@pytest.mark.parametrize("label,data,expected", UDH_CASES, ids=[c[0] for c in UDH_CASES])
def test_parse_udh(label, data, expected):
    assert parse_udh(data) == expected


@pytest.mark.parametrize("data", [b"", bytes([9, 0, 3, 1]), bytes([5, 0, 5, 1, 2, 3])])
def test_parse_udh_rejects_malformed(data):
    with pytest.raises(ValueError):
        parse_udh(data)


def test_extract_segment_kinds_and_reassembler_out_of_order():
    parts = split_message("z" * 400, 0, "udh16", ref=0xBEEF)
    segs = _reassemble(parts)
    assert {s.kind for s in segs} == {"udh16"} and segs[0].ref == 0xBEEF
    r = Reassembler()
    assert r.add("k", segs[2]) is None
    assert r.add("k", segs[0]) is None
    done = r.add("k", segs[1])
    assert [s.seq for s in done] == [1, 2, 3] and join_segments(done) == "z" * 400
    assert len(r) == 0
    # a malformed UDH is treated as payload, never raises
    pdu = make_pdu("deliver_sm", esm_class=0x40, short_message=bytes([50, 1]))
    assert extract_segment(parse_pdu(encode_pdu(pdu))).total == 1


def test_reassembler_purges_old_incomplete_messages():
    now = [0.0]
    r = Reassembler(max_age_s=10, clock=lambda: now[0])
    seg = codec.Segment(1, 2, 1, b"a", 0, "udh8")
    assert r.add("k", seg) is None
    now[0] = 11
    assert r.purge() == 1 and len(r) == 0


# ------------------------------------------------------------------ PDUs

def test_pdu_roundtrip_with_tlvs():
    pdu = make_pdu("deliver_sm", sequence=77, source_addr="250788", destination_addr="8080",
                   esm_class=4, short_message=b"id:1 stat:DELIVRD", receipted_message_id="00ab12",
                   message_state=2, sar_msg_ref_num=513, sar_total_segments=3, sar_segment_seqnum=2)
    back = parse_pdu(encode_pdu(pdu))
    assert back.command == "deliver_sm" and back.sequence == 77
    assert (back.source_addr, back.destination_addr) == ("250788", "8080")
    assert back.receipted_message_id == "00ab12" and back.message_state == 2
    assert (back.sar_msg_ref_num, back.sar_total_segments, back.sar_segment_seqnum) == (513, 3, 2)
    assert back.short_message == b"id:1 stat:DELIVRD"
    assert encode_pdu(back) == encode_pdu(pdu)  # parsed PDUs re-encode identically


def test_message_payload_roundtrip_beyond_smpplib_max():
    pdu = make_pdu("submit_sm", destination_addr="1", message_payload=b"x" * 3000)
    back = parse_pdu(encode_pdu(pdu))
    assert back.message_payload == b"x" * 3000 and back.short_message == b""


def _with_tlvs(pdu, extra: bytes) -> bytes:
    raw = encode_pdu(pdu) + extra
    return struct.pack(">L", len(raw)) + raw[4:]


def test_tlv_quirks_are_handled():
    base = make_pdu("deliver_sm", sequence=5, source_addr="1", destination_addr="2", short_message=b"x")
    # receipted_message_id without NUL terminator keeps its last character
    raw = _with_tlvs(base, struct.pack(">HH", 0x001E, 4) + b"abcd")
    assert parse_pdu(raw).receipted_message_id == "abcd"
    # unknown tag is kept, not an error
    raw = _with_tlvs(base, struct.pack(">HH", 0x1400, 2) + b"\x01\x02")
    assert parse_pdu(raw).unknown_tlvs == {0x1400: b"\x01\x02"}
    # integer TLV with a length other than declared
    raw = _with_tlvs(base, struct.pack(">HH", 0x0427, 2) + b"\x00\x05")
    assert parse_pdu(raw).message_state == 5
    # a known tag the command does not define (ussd_service_op on deliver_sm) -> unknown_tlvs
    raw = _with_tlvs(base, struct.pack(">HH", 0x0501, 1) + b"\x02")
    assert parse_pdu(raw).unknown_tlvs == {0x0501: b"\x02"}
    # truncated TLV -> PduError with the sequence, so the caller can nack
    raw = _with_tlvs(base, struct.pack(">HH", 0x001E, 10) + b"ab")
    with pytest.raises(PduError) as err:
        parse_pdu(raw)
    assert err.value.sequence == 5


def test_responses_keep_the_request_sequence_and_status():
    req = make_pdu("submit_sm", sequence=4242, destination_addr="1", short_message=b"a")
    resp = make_response(parse_pdu(encode_pdu(req)), status=0x58)
    back = parse_pdu(encode_pdu(resp))
    assert (back.command, back.sequence, back.status) == ("submit_sm_resp", 4242, 0x58)
    ok = parse_pdu(encode_pdu(make_response(req, message_id="0001e240")))
    assert ok.message_id == "0001e240" and ok.status == 0
    assert make_response(make_pdu("enquire_link", sequence=3)).command == "enquire_link_resp"


def test_make_pdu_rejects_unknown_fields_and_commands():
    with pytest.raises(ValueError):
        make_pdu("submit_sm", no_such_field=1)
    with pytest.raises(ValueError):
        make_pdu("no_such_command")


def test_sequences_increase():
    gen = codec.SequenceGenerator()
    a = make_pdu("enquire_link", sequences=gen)
    b = make_pdu("enquire_link", sequences=gen)
    assert (a.sequence, b.sequence) == (1, 2)
    gen2 = codec.SequenceGenerator(start=0x7FFFFFFF)
    assert gen2.next_sequence() == 0x7FFFFFFF and gen2.next_sequence() == 1


def test_bind_roundtrip_strings_are_str():
    pdu = parse_pdu(encode_pdu(make_pdu("bind_transceiver", system_id="weni", password="pw",
                                        system_type="")))
    assert (pdu.system_id, pdu.password, pdu.interface_version) == ("weni", "pw", 0x34)


def test_unknown_command_and_malformed_bodies():
    raw = struct.pack(">LLLL", 16, 0x00000099, 0, 12)
    unknown = parse_pdu(raw)
    assert isinstance(unknown, UnknownPdu) and unknown.sequence == 12 and unknown.is_request()
    # submit_sm_resp whose message_id lacks its NUL terminator
    raw = struct.pack(">LLLL", 19, 0x80000004, 0, 9) + b"abc"
    with pytest.raises(PduError) as err:
        parse_pdu(raw)
    assert err.value.sequence == 9
    with pytest.raises(PduError):
        parse_pdu(struct.pack(">LLLL", 20, 0x80000004, 0, 9))  # length mismatch


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_read_pdu_frames_and_rejects_bogus_lengths():
    one = encode_pdu(make_pdu("enquire_link", sequence=1))
    two = encode_pdu(make_pdu("submit_sm", sequence=2, destination_addr="5", short_message=b"hey"))
    reader = _reader(one + two)
    assert (await read_pdu(reader)).command == "enquire_link"
    second = await read_pdu(reader)
    assert second.command == "submit_sm" and second.short_message == b"hey"
    with pytest.raises(asyncio.IncompleteReadError):
        await read_pdu(reader)
    for bogus in (8, 15, 64 * 1024 + 1, 0xFFFFFFFF):
        with pytest.raises(PduError) as err:
            await read_pdu(_reader(struct.pack(">L", bogus) + b"\0" * 12))
        assert err.value.sequence is None and "command_length" in str(err.value)


# ------------------------------------------------------------------ receipts and ids

def test_format_receipt():
    when = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    text = format_receipt("0a1b", "DELIVRD", 0, "Love is patient. Love is kind.",
                          submit_date=when, done_date=when)
    assert text == ("id:0a1b sub:001 dlvrd:001 submit date:2611241005 done date:2611241005 "
                    "stat:DELIVRD err:000 text:Love is patient. Lov")
    assert "dlvrd:000" in format_receipt("1", "UNDELIV", 13) and "err:013" in format_receipt("1", "UNDELIV", 13)


RECEIPT_CASES = [
    ("standard",
     "id:12345 sub:001 dlvrd:001 submit date:2611241005 done date:2611241006 stat:DELIVRD err:000 text:Hi: there",
     {"id": "12345", "sub": "001", "dlvrd": "001", "submit date": "2611241005",
      "done date": "2611241006", "stat": "DELIVRD", "err": "000", "text": "Hi: there"}),
    ("upper case keys and lower stat",
     "ID:abc SUB:001 DLVRD:000 SUBMIT DATE:2611241005 DONE DATE:2611241005 STAT:undeliv ERR:001 Text:x",
     {"id": "abc", "stat": "UNDELIV", "err": "001", "text": "x", "submit date": "2611241005"}),
    ("missing fields", "id:77 stat:EXPIRED",
     {"id": "77", "stat": "EXPIRED", "err": None, "text": None, "sub": None}),
    ("underscored dates", "id:9 submit_date:2601010000 done_date:2601010001 stat:DELIVRD",
     {"submit date": "2601010000", "done date": "2601010001"}),
    ("not a receipt", "hello world", {"id": None, "stat": None}),
]


@pytest.mark.parametrize("label,text,expected", RECEIPT_CASES, ids=[c[0] for c in RECEIPT_CASES])
def test_parse_receipt(label, text, expected):
    parsed = parse_receipt(text)
    assert set(parsed) == set(codec.RECEIPT_FIELDS)
    for key, value in expected.items():
        assert parsed[key] == value, key


def test_parse_receipt_roundtrip_and_bytes():
    text = format_receipt("ABC", "REJECTD", 8, "t")
    parsed = parse_receipt(text.encode())
    assert (parsed["id"], parsed["stat"], parsed["err"], parsed["text"]) == ("ABC", "REJECTD", "008", "t")


ID_CASES = [
    ("strip and lower", " 00ABcd ", "abcd"),
    ("zeros only", "000", "0"),
    ("int", 42, "42"),
    ("none", None, ""),
    ("empty", "  ", ""),
]


@pytest.mark.parametrize("label,raw,expected", ID_CASES, ids=[c[0] for c in ID_CASES])
def test_normalise_message_id(label, raw, expected):
    assert normalise_message_id(raw) == expected


def test_hex_dec_and_receipt_keys():
    assert codec.hex_to_dec("1A") == "26" and codec.dec_to_hex("26") == "1a"
    assert codec.hex_to_dec("xyz") is None and codec.dec_to_hex("1a") is None
    # resp "0001e240" (hex) and receipt "123456" (decimal) -> connector format "hex"
    assert receipt_id_keys("123456", "hex") == ["1e240"]
    assert receipt_id_keys("1E240", "dec") == ["123456"]
    assert receipt_id_keys("0001E240", "same") == ["1e240"]
    assert receipt_id_keys("123456", "auto") == ["123456", "1e240", "1193046"]


def test_message_states():
    assert codec.message_state("DELIVRD") == 2 and codec.message_state("undeliv") == 5
    assert codec.message_state("REJECTD") == 8 and codec.message_state("weird") == 7
    assert codec.stat_name(2) == "DELIVRD" and codec.stat_name(99) == "UNKNOWN"


# ------------------------------------------------------------------ addresses and statuses

TON_CASES = [
    ("e164 with plus", "+250788123123", (1, 1, "250788123123")),
    ("long digits", "250788123123", (1, 1, "250788123123")),
    ("short code 3", "123", (3, 1, "123")),
    ("short code 8", "12345678", (3, 1, "12345678")),
    ("9 digits international", "123456789", (1, 1, "123456789")),
    ("plus short", "+1234", (1, 1, "1234")),
    ("alphanumeric", "Weni", (5, 0, "Weni")),
    ("alphanumeric with digits", "Info24", (5, 0, "Info24")),
    ("spaces trimmed", " +33612345678 ", (1, 1, "33612345678")),
    ("two digits unknown", "12", (0, 1, "12")),
]


@pytest.mark.parametrize("label,addr,expected", TON_CASES, ids=[c[0] for c in TON_CASES])
def test_source_ton_npi(label, addr, expected):
    assert source_ton_npi(addr) == expected


STATUS_CASES = [
    (0x00, "ESME_ROK"), (0x0E, "ESME_RINVPASWD"), (0x58, "ESME_RTHROTTLED"),
    (0x14, "ESME_RMSGQFUL"), (0x08, "ESME_RSYSERR"), (0x64, "ESME_RX_T_APPN"),
    (0x0B, "ESME_RINVDSTADR"), (0x0F, "ESME_RINVSYSID"), (0x04, "ESME_RINVBNDSTS"),
    (0x401, "0x00000401"),
]


@pytest.mark.parametrize("code,name", STATUS_CASES, ids=[c[1] for c in STATUS_CASES])
def test_status_names(code, name):
    assert status_name(code) == name
    assert status_code(name) == code


def test_status_code_forms():
    assert status_code("RTHROTTLED") == 0x58 and status_code("11") == 11 and status_code(5) == 5
    with pytest.raises(ValueError):
        status_code("ESME_NOPE")
    assert codec.RETRYABLE_STATUSES == {0x58, 0x14, 0x08}
