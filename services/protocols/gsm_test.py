"""The GSM 03.38 pieces every protocol shares: 7-bit packing, splitting, the concatenation UDH
and DCS decoding."""

from __future__ import annotations

import pytest

from services.protocols import gsm


@pytest.mark.parametrize("text,packed", [
    ("ALPHA", "4126141904"),  # UCP OAdC vectors without their length octet
    ("Switchboard", "D37B9A3E468BDF613919"),
    ("test", "F4F29C0E"),
    ("hellohello", "E8329BFD4697D9EC37"),  # 3GPP TS 23.038 example
    ("", ""),
])
def test_pack_and_unpack(text, packed):
    septets = gsm.gsm_encode(text)
    assert gsm.pack_septets(septets).hex().upper() == packed
    assert gsm.unpack_septets(bytes.fromhex(packed), len(septets)) == septets


def test_unpack_takes_what_is_there_and_pack_refuses_octets():
    assert gsm.unpack_septets(bytes.fromhex("F4F29C0E"), 99) == gsm.gsm_encode("test")
    assert gsm.unpack_septets(b"\x41") == b"\x41"  # 8 bits hold one septet
    with pytest.raises(ValueError, match="larger than 7 bits"):
        gsm.pack_septets(b"\x80")


@pytest.mark.parametrize("text,coding,sizes", [
    ("a" * 160, "gsm7", [160]),
    ("a" * 161, "gsm7", [153, 8]),
    ("€" * 80, "gsm7", [80]),
    ("a" * 152 + "€" + "b" * 10, "gsm7", [152, 11]),  # the escape pair goes whole into part 2
    ("é" * 66 + "😀" + "é" * 5, "ucs2", [66, 6]),  # the emoji's surrogate pair is not cut
    ("ш" * 70, "ucs2", [70]),
    ("😀" * 35, "ucs2", [35]),  # 70 units exactly
    ("😀" * 36, "ucs2", [33, 3]),
])
def test_plan_sms_limits_and_cuts(text, coding, sizes):
    plan = gsm.plan_sms(text)
    assert plan.coding == coding
    assert [len(c) for c in plan.chunks] == sizes
    assert "".join(plan.chunks) == text
    cost = gsm.septet_count if coding == "gsm7" else gsm.ucs2_units
    single, multi = gsm.GSM7_LIMITS if coding == "gsm7" else gsm.UCS2_LIMITS
    limit = single if len(sizes) == 1 else multi
    assert all(cost(c) <= limit for c in plan.chunks)


def test_plan_sms_forced_coding_and_errors():
    assert gsm.plan_sms("abc", "ucs2").coding == "ucs2"
    with pytest.raises(ValueError, match="not in the GSM"):
        gsm.plan_sms("😀", "gsm7")
    with pytest.raises(ValueError, match="unknown coding"):
        gsm.plan_sms("a", "latin1")
    with pytest.raises(ValueError, match="255"):
        gsm.plan_sms("a" * 153 * 256)


def test_chunk_text_never_returns_an_empty_chunk():
    assert gsm.chunk_text("€€", 1, gsm.SEPTETS.__getitem__) == ["€", "€"]


@pytest.mark.parametrize("udh,expected", [
    (gsm.concat_udh(0x1FF, 3, 2), (0xFF, 3, 2)),
    (bytes.fromhex("0608040102030201"), (0x0102, 3, 2)),
    (bytes.fromhex("0B0504158200000003AA0201"), (0xAA, 2, 1)),  # port IE skipped
    (bytes.fromhex("03240100"), (None, 1, 1)),
])
def test_parse_concat_udh(udh, expected):
    assert gsm.parse_concat_udh(udh) == expected


@pytest.mark.parametrize("udh,error", [
    (b"", "empty"), (b"\x05\x00\x03", "exceeds"), (b"\x03\x00\x03\x01", "truncated"),
])
def test_bad_udh_is_a_clear_error(udh, error):
    with pytest.raises(ValueError, match=error):
        gsm.parse_concat_udh(udh)


@pytest.mark.parametrize("payload,dcs,text", [
    (gsm.gsm_encode("@€"), 0, "@€"),
    ("😀".encode("utf-16-be"), 8, "😀"),
    (b"\xe9", 3, "é"),
    (gsm.gsm_encode("hi"), 0xF0, "hi"),  # class 0, GSM alphabet
    ("ш".encode("utf-16-be"), 0x18, "ш"),  # general group, UCS2
    (b"\xd8\x3d", 8, "\ufffd"),  # half a surrogate pair: replaced, no exception
])
def test_decode_user_data(payload, dcs, text):
    assert gsm.decode_user_data(payload, dcs) == text
