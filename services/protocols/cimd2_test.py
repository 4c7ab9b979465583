"""CIMD2 codec: the vectors of SMSC_PROTOCOLS.md §5 byte for byte, the ``_xy`` escapes, UCS2
with surrogate pairs, multipart, malformed packets, and tshark's CIMD dissector on every
packet we build."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.protocols import cimd2
from services.protocols.cimd2 import Cimd2Error, Packet
from tests.wirecheck import cimd_problems, require

MULTIPART_1 = (b"\x0203:007\t021:0612345670\t023:1234\t056:0\t055:0\t044:1\t032:050003020201\t033:"
               + b"A" * 150 + b"BBB\tBA\x03")

# (name, packet built with our codec, the vector as SMSC_PROTOCOLS.md §5 has it)
BUILT = [
    ("login, Kannel", lambda: cimd2.login(1, "foo", "bar"), b"\x0201:001\t010:foo\t011:bar\t59\x03"),
    ("login OK, test_cimd2", lambda: cimd2.response(cimd2.login(1, "foo", "bar")), b"\x0251:001\t3C\x03"),
    ("login refused, test_cimd2", lambda: cimd2.response(cimd2.login(1, "foo", "x"), error=100,
                                                         error_text="invalid login"),
     b"\x0251:001\t900:100\t901:invalid login\tA6\x03"),
    ("login, jcimd", lambda: cimd2.login(1, "username", "password"),
     b"\x0201:001\t010:username\t011:password\tB3\x03"),
    ("submit, Kannel", lambda: cimd2.submit(3, "0612345678", "1234", cimd2.message_params("Hello world")[0],
                                            status_report=14),
     b"\x0203:003\t021:0612345678\t023:1234\t056:14\t055:0\t044:0\t033:Hello world\t2D\x03"),
    ("submit response, test_cimd2", lambda: cimd2.response(
        Packet(3, 3), ((21, "0612345678"), (60, "261201212133"))),
     b"\x0253:003\t021:0612345678\t060:261201212133\t51\x03"),
    ("submit, Wikipedia", lambda: Packet(3, 7, ((21, "12345678"), (33, "hello"))),
     b"\x0203:007\t021:12345678\t033:hello\tA6\x03"),
    ("submit response, Wikipedia", lambda: cimd2.response(Packet(3, 7), ((21, "12345678"), (60, "971107131212"))),
     b"\x0253:007\t021:12345678\t060:971107131212\tFA\x03"),
    ("submit escapes + alnum sender, Kannel", lambda: cimd2.submit(
        5, "0612345678", "ALPHA", cimd2.message_params("@$_é€[")[0]),
     b"\x0203:005\t021:0612345678\t027:ALPHA\t056:0\t055:0\t044:0\t033:_Oa$_--_e'_XXe_XX<\tF4\x03"),
    ("submit UCS2, Kannel", lambda: cimd2.submit(5, "0612345678", "1234", cimd2.message_params("Привет")[0]),
     b"\x0203:005\t021:0612345678\t023:1234\t056:0\t055:0\t044:0\t034:041F04400438043204350442\t030:8\t9E\x03"),
    ("submit multipart part 1, Kannel", lambda: cimd2.submit(
        7, "0612345670", "1234", cimd2.message_params("A" * 150 + "BBB" + "C" * 20, ref=2)[0]), MULTIPART_1),
    ("deliver message, Kannel's peer", lambda: cimd2.deliver_message(
        0, "1234", "447700900123", "261201212156", cimd2.message_params("Hi @ there")[0]),
     b"\x0220:000\t021:1234\t023:447700900123\t060:261201212156\t033:Hi _Oa there\t3B\x03"),
    ("deliver message response, Kannel", lambda: cimd2.response(Packet(20, 0)), b"\x0270:000\t3C\x03"),
    ("status report, Kannel's peer", lambda: cimd2.status_report(
        2, "0612345678", "261201212201", 4, "261201212201"),
     b"\x0223:002\t021:0612345678\t060:261201212201\t061:4\t063:261201212201\t87\x03"),
    ("status report response, Kannel", lambda: cimd2.response(Packet(23, 2)), b"\x0273:002\t41\x03"),
    ("alive", lambda: cimd2.alive(7), b"\x0240:007\t40\x03"),
    ("alive response", lambda: cimd2.response(cimd2.alive(7)), b"\x0290:007\t45\x03"),
    ("logout", lambda: cimd2.logout(9), b"\x0202:009\t40\x03"),
    ("logout response", lambda: cimd2.response(cimd2.logout(9)), b"\x0252:009\t45\x03"),
]


@pytest.mark.parametrize("name,build,vector", BUILT, ids=[b[0] for b in BUILT])
def test_vectors_built_byte_for_byte(name, build, vector):
    packet = build()
    assert cimd2.encode_packet(packet) == vector
    assert cimd2.decode_packet(vector) == packet


@pytest.mark.parametrize("name,build,vector", BUILT, ids=[b[0] for b in BUILT])
def test_packets_without_checksum_are_accepted(name, build, vector):
    bare = cimd2.encode_packet(build(), with_checksum=False)
    assert bare == vector[:-3] + b"\x03"
    assert cimd2.decode_packet(bare) == build()


def test_packets_we_build_pass_tshark():
    require("tshark", "text2pcap")
    packets = [cimd2.encode_packet(build()) for _, build, _ in BUILT]
    packets += [cimd2.encode_packet(cimd2.submit(n, "+250788123456", "Switch€board", part, status_report=14))
                for n, part in enumerate(cimd2.message_params("{€}[x]|^~\\" * 30 + "😀" * 3, ref=9), start=1)]
    packets += [cimd2.encode_packet(cimd2.submit(n, "250788123456", "+250788000", part))
                for n, part in enumerate(cimd2.message_params("€[]{} _@ " * 30, ref=200), start=1)]
    packets += [cimd2.encode_packet(cimd2.general_error(4, 1, "unexpected operation")),
                cimd2.encode_packet(cimd2.nack(5))]
    assert cimd_problems(packets) == []


def test_tshark_catches_a_bad_checksum():
    require("tshark", "text2pcap")
    assert cimd_problems([b"\x0240:007\t41\x03"])  # the dissector is a real check


# --------------------------------------------------------------------------------------
# Text


@pytest.mark.parametrize("text,spelling", [
    ("@$_é€[", "_Oa$_--_e'_XXe_XX<"),  # verified against Kannel
    ("€[]{}", "_XXe_XX<_XX>_XX(_XX)"),
    ("\\~|^", "_XX/_XX=_XX_!!_XX_gl"),
    ("£¥èùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ", "_L-_Y-_e`_u`_i`_o`_C,_O/_o/_A*_a*_gd_gf_gg_gl_go_gp_gi_gs_gt_gx_AE_ae_ss_E'"),
    ('"¤¡ÄÖÑÜ§¿äöñüà', "_qq_ox_!!_A\"_O\"_N~_U\"_so_??_a\"_o\"_n~_u\"_a`"),
    ("Hello, world! 1+1=2?", "Hello, world! 1+1=2?"),
])
def test_escape_table(text, spelling):
    assert cimd2.escape_text(text) == spelling
    assert cimd2.unescape_text(spelling) == text


@pytest.mark.parametrize("spelling,text", [
    ("]}", "Åå"),  # Kannel's single-character aliases
    ("caf\xe9", "café"),  # raw Latin-1 tolerated
    ("\xff", "ÿ"),  # not GSM at all: kept
    ("_zz", "_zz"),  # unknown escape: kept as written
    ("_XX", ""),  # a lone escape at the end is dropped
    ("a_", "a_"),
])
def test_unescape_is_lenient(spelling, text):
    assert cimd2.unescape_text(spelling) == text


def test_escape_rejects_non_gsm():
    with pytest.raises(ValueError, match="not in the GSM"):
        cimd2.escape_text("😀")


def read(params) -> cimd2.UserData:
    return cimd2.read_user_data(cimd2.submit(1, "1", "1", params))


def test_ucs2_with_emoji_round_trips():
    [params] = cimd2.message_params("hi 😀")
    assert params[-2:] == [(34, "006800690020D83DDE00"), (30, "8")]
    got = read(params)
    assert (got.text, got.dcs) == ("hi 😀", 8)


def test_multipart_never_cuts_an_escape_or_surrogate_pair():
    gsm = cimd2.message_params("A" * 152 + "€" + "B" * 10, ref=7)
    assert [dict(p)[44] for p in gsm] == ["1", "0"]
    assert [dict(p)[32] for p in gsm] == ["050003070201", "050003070202"]
    assert dict(gsm[0])[33] == "A" * 152 and dict(gsm[1])[33].startswith("_XXe")
    ucs2 = cimd2.message_params("xx" + "😀" * 40, ref=8)
    assert [len(dict(p)[34]) // 4 for p in ucs2] == [66, 16]
    got = [read(p) for p in ucs2]
    assert [(u.ref, u.total, u.seq) for u in got] == [(8, 2, 1), (8, 2, 2)]
    assert "".join(u.text for u in got) == "xx" + "😀" * 40


def test_single_part_has_no_udh_and_no_more_flag():
    [params] = cimd2.message_params("hello")
    assert params == [(44, "0"), (33, "hello")]


@pytest.mark.parametrize("params,error", [
    ([(32, "zz"), (33, "x")], "032 is not hex"),
    ([(32, "0500"), (33, "x")], "032: UDH length 5"),
    ([(34, "0G")], "034 is not hex"),
])
def test_bad_user_data_is_a_clear_error(params, error):
    with pytest.raises(Cimd2Error, match=error) as info:
        read(params)
    assert info.value.code == 302


def test_binary_user_data_and_latin1_text():
    assert read([(34, "4142")]).payload == b"AB" and read([(34, "4142")]).dcs == 4
    got = read([(33, "\xff")])
    assert (got.text, got.dcs) == ("ÿ", 3)


# --------------------------------------------------------------------------------------
# Addresses, numbers, reports


@pytest.mark.parametrize("sender,param", [
    ("+447700900000", (23, "447700900000")),
    ("1234", (23, "1234")),
    ("ALPHA", (27, "ALPHA")),
    ("Switchboard Ltd", (27, "Switchboard")),
    ("Café😀", (27, "Café?")),
])
def test_sender_param(sender, param):
    assert cimd2.sender_param(sender) == param


@pytest.mark.parametrize("bad", ["", "+", "12a", "1" * 21])
def test_bad_destination_is_error_300(bad):
    with pytest.raises(Cimd2Error, match="destination") as info:
        cimd2.submit(1, bad, "1234", [(33, "x")])
    assert info.value.code == 300


def test_packet_numbers_wrap():
    odd = cimd2.PacketNumbers()
    seen = [odd.next() for _ in range(130)]
    assert seen[:3] == [1, 3, 5] and seen[127] == 255 and seen[128:] == [1, 3]
    even = cimd2.PacketNumbers(odd=False)
    seen = [even.next() for _ in range(130)]
    assert seen[:2] == [0, 2] and seen[127] == 254 and seen[128:] == [0, 2]


@pytest.mark.parametrize("status,expected", [
    ("4", ("delivered", None)), ("1", ("sent", None)), ("2", ("failed", "dlr_2")),
    ("3", ("failed", "dlr_3")), ("5", ("failed", "dlr_5")), ("9", ("failed", "dlr_9")),
    ("0", None), ("12", None), ("", None), ("x", None),
])
def test_report_status(status, expected):
    assert cimd2.report_status(Packet(23, 2, ((61, status),))) == expected


def test_response_errors_and_timestamps():
    resp = cimd2.decode_packet(b"\x0251:001\t900:100\t901:invalid login\tA6\x03")
    assert (resp.error_code, resp.error, resp.is_response) == ("100", "cimd2_100", True)
    assert cimd2.response(Packet(3, 3)).error is None
    moment = datetime(2026, 12, 1, 21, 21, 33)
    assert cimd2.format_timestamp(moment) == "261201212133"
    assert cimd2.parse_timestamp("261201212133") == moment
    assert cimd2.parse_timestamp("261301212133") is None and cimd2.parse_timestamp("") is None


def test_repeated_parameters_are_kept():
    packet = cimd2.decode_packet(b"\x0203:003\t021:1\t021:2\t033:x\t\x03")
    assert packet.get_all(21) == ["1", "2"] and packet.get(21) == "1" and packet.get(99) is None


# --------------------------------------------------------------------------------------
# Malformed packets


@pytest.mark.parametrize("raw,error,number", [
    (b"\x0240:007\t41\x03", "checksum '41' should be 40", 7),
    (b"\x0240:007\tXYZ\x03", "not a checksum", 7),
    (b"\x0240:07\t\x03", "not OC:PNN", None),
    (b"\x02ab:123\t\x03", "not OC:PNN", 123),
    (b"\x0203:003\t21:1\t\x03", "not PPP:value", 3),
    (b"\x0203:003\tfoo\t\x03", "not PPP:value", 3),
    (b"\x02\x03", "not OC:PNN", None),
])
def test_malformed_packets_are_clear_errors(raw, error, number):
    with pytest.raises(Cimd2Error, match=error) as info:
        cimd2.decode_packet(raw)
    assert info.value.number == number


def test_header_only_and_lower_case_checksum():
    assert cimd2.decode_packet(b"\x0240:007\x03") == Packet(40, 7)
    assert cimd2.decode_packet(b"\x0203:007\t021:12345678\t033:hello\ta6\x03").get(33) == "hello"
    assert cimd2.decode_packet(b"\x0203:003\t033:a:b\t\x03").get(33) == "a:b"  # ':' in a value


@pytest.mark.parametrize("packet,error", [
    (Packet(100, 1), "opcode"),
    (Packet(1, 1000), "packet number"),
    (Packet(1, 1, ((1000, "x"),)), "parameter code"),
    (Packet(1, 1, ((33, "a\tb"),)), "TAB"),
    (Packet(1, 1, ((33, "😀"),)), "cannot carry"),
])
def test_unencodable_packets_are_clear_errors(packet, error):
    with pytest.raises(Cimd2Error, match=error):
        cimd2.encode_packet(packet)


def test_reader_splits_streams_and_skips_noise():
    reader = cimd2.packet_reader()
    a, b = cimd2.encode_packet(cimd2.alive(7)), cimd2.encode_packet(cimd2.login(1, "foo", "bar"))
    stream = b"noise" + a + b"\r\n\x00" + b
    out = []
    for i in range(len(stream)):
        out += reader.feed(stream[i:i + 1])
    assert [p.opcode for p in out] == [40, 1]


def test_reader_reports_bad_packets_and_keeps_going():
    reader = cimd2.packet_reader(max_packet=100)
    good = cimd2.encode_packet(cimd2.alive(9))
    out = reader.feed(b"\x0240:007\t41\x03" + b"\x0203:00" + good)
    assert isinstance(out[0], Cimd2Error) and out[0].number == 7
    assert cimd2.nack(out[0].number) == Packet(99, 7)
    assert isinstance(out[1], Cimd2Error) and "interrupted" in str(out[1])
    assert out[2] == Packet(40, 9)
    out = reader.feed(b"\x02" + b"x" * 200)
    assert len(out) == 1 and "no ETX" in str(out[0])
    assert reader.feed(good) == [Packet(40, 9)]


# --------------------------------------------------------------------------------------
# Random input: only Cimd2Error, never anything else


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_packets_or_cimd2_errors(data):
    for item in cimd2.packet_reader(max_packet=200).feed(data):
        assert isinstance(item, Packet | Cimd2Error)
    try:
        packet = cimd2.decode_packet(data)
    except Cimd2Error:
        return
    try:
        again = cimd2.encode_packet(packet)
    except Cimd2Error:
        return  # e.g. a number > 999 read from a header cannot come back
    assert cimd2.decode_packet(again) == packet


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_unescape_never_raises_and_escape_round_trips(text):
    cimd2.unescape_text(text)
    try:
        spelled = cimd2.escape_text(text)
    except ValueError:
        return  # not GSM
    assert cimd2.unescape_text(spelled) == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.integers(0, 255))
def test_any_text_round_trips_through_parts(text, ref):
    try:
        parts = cimd2.message_params(text, ref)
    except ValueError:
        return
    data = [cimd2.read_user_data(Packet(3, 1, tuple(p))) for p in parts]
    assert "".join(d.text for d in data) == text
