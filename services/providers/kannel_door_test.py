"""The Kannel door's pure knowledge (CONTRACT section 10): sendsms parsing, DLR types, escapes."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from . import kannel
from . import kannel_door as kn
from .testkit import CTX, channel, send

BASE = {"username": b"rapidpro", "password": b"pw", "to": b"+250788383383"}


def pairs(**values) -> dict[str, bytes]:
    return {**BASE, **{k.replace("_", "-"): v for k, v in values.items()}}


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"a=1&b=2", {"a": b"1", "b": b"2"}),
        (b"text=%00H%00i&coding=2", {"text": b"\x00H\x00i", "coding": b"2"}),
        (b"text=a+b%2Bc", {"text": b"a b+c"}),
        (b"to=1&to=2", {"to": b"1"}),  # the first occurrence wins
        (b"&&flag&x=", {"flag": b"", "x": b""}),
        (b"text=%E9t%E9", {"text": b"\xe9t\xe9"}),  # not UTF-8: bytes kept as they are
    ],
)
def test_query_pairs(raw, expected):
    assert kn.query_pairs(raw) == expected


@pytest.mark.parametrize(
    "values, text",
    [
        ({"text": b"plain"}, "plain"),
        ({"text": "Привет ☺".encode("utf-16-be"), "coding": b"2"}, "Привет ☺"),
        ({"text": "Привет ☺".encode(), "coding": b"2", "charset": b"utf8"}, "Привет ☺"),
        ({"text": "Привет ☺".encode(), "coding": b"2", "charset": b"UTF-8"}, "Привет ☺"),
        ({"text": "Привет ☺".encode("utf-16-be"), "coding": b"2", "charset": b"UTF-16BE"}, "Привет ☺"),
        ({"text": "é".encode("latin-1"), "charset": b"ISO-8859-1"}, "é"),
        ({"text": "😀".encode("utf-16-be"), "coding": b"2"}, "😀"),  # a surrogate pair
    ],
)
def test_text_in_every_coding_courier_used(values, text):
    sms = kn.read_sendsms(pairs(**values))
    assert isinstance(sms, kn.SendSms) and sms.text == text


@pytest.mark.parametrize(
    "values, refusal",
    [
        ({"to": None}, kn.MISSING_TO),
        ({"to": b"  "}, kn.EMPTY_TO),
        ({"dlr_mask": b"64"}, (400, "Dlr-mask field misformed, rejected")),
        ({"dlr_mask": b"-2"}, (400, "Dlr-mask field misformed, rejected")),
        ({"coding": b"3"}, (400, "Coding field misformed, rejected")),
        ({"mclass": b"x"}, (400, "Mclass field misformed, rejected")),
        ({"text": b"\xff\xfe\x00", "coding": b"2"}, kn.BAD_CHARSET),
        ({"text": b"\xff"}, kn.BAD_CHARSET),  # not UTF-8
        ({"text": b"x", "charset": b"no-such-charset"}, kn.BAD_CHARSET),
        ({"from": b"\xff"}, (400, "From field misformed, rejected")),
    ],
)
def test_refusals(values, refusal):
    raw = pairs(**{k: v for k, v in values.items() if v is not None})
    if values.get("to", b"") is None:
        raw.pop("to")
    assert kn.read_sendsms(raw) == kn.Refusal(*refusal)


def test_options_and_aliases():
    sms = kn.read_sendsms({"user": b"u", "pass": b"p", "to": b"1234", "text": b"hi", "dlrurl": b"http://x/?s=%d",
                           "dlrmask": b"3", "priority": b"2", "smsc": b"second", "udh": b"\x05\x00"})  # fmt: skip
    assert (sms.username, sms.password, sms.dlr_url, sms.dlr_mask, sms.priority, sms.smsc) == ("u", "p", "http://x/?s=%d", 3, 2, "second")
    assert sms.extra["udh"] == "0500"
    assert kn.credentials({"user": b"u", "password": b"p", "pass": b"q"}) == ("u", "p")
    assert kn.read_sendsms(pairs(dlr_mask=b"-1")).dlr_mask == 0  # -1: no reports


def test_our_own_kannel_transport_speaks_what_the_door_reads():
    """The REST adapter towards a Kannel box and the door for courier agree on the wire."""
    ch = channel("kannel", {"base_url": "http://kannel:13013", "username": "sb", "password": "pw"}, address="1234")
    [request] = kannel.build(ch, send("Привет 👋", high_priority=True), CTX)
    sms = kn.read_sendsms(kn.query_pairs(urlsplit(request.url).query.encode()))
    assert (sms.text, sms.to, sms.priority, sms.dlr_mask, sms.username) == ("Привет 👋", "+250788123123", 1, 27, "sb")


ALL = 31
W, D, U, S, R = kn.WIRED, kn.DELIVERED, kn.UNDELIVERED, kn.SENT, kn.REJECTED


@pytest.mark.parametrize(
    "mask, statuses, reports",
    [
        (27, ["wired", "delivered"], [[W], [D]]),
        (27, ["delivered", "wired"], [[W, D], []]),  # the receipt overtook `wired`: 8 first, no late 8
        (ALL, ["wired", "sent", "delivered"], [[W], [S], [D]]),
        (ALL, ["wired", "delivered", "sent"], [[W], [D], []]),  # no 4 after a final type
        (27, ["failed"], [[R]]),  # refused before `wired`
        (27, ["wired", "failed"], [[W], [U]]),
        (27, ["errored", "errored", "wired", "delivered"], [[], [], [W], [D]]),
        (1, ["wired", "delivered"], [[], [D]]),
        (2, ["wired", "failed"], [[], [U]]),  # failed after wired is a 2 even when 8 is not asked for
        (16, ["wired", "failed"], [[], []]),
        (27, ["wired", "wired", "delivered", "delivered"], [[W], [], [D], []]),  # at most one of each
        (0, ["wired", "delivered"], [[], []]),
    ],
)
def test_dlr_types(mask, statuses, reports):
    state = kn.DlrState()
    got = []
    for status in statuses:
        types, state = kn.dlr_types(status, mask, state)
        got.append(types)
    assert got == reports


@pytest.mark.parametrize(
    "template, values, filled",
    [
        ("https://rp/c/kn/x/status?id=12&status=%d", {"d": "8"}, "https://rp/c/kn/x/status?id=12&status=8"),
        ("https://rp/s?uuid=0191&status=%d&x=%Z", {"d": "1"}, "https://rp/s?uuid=0191&status=1&x=%Z"),
        ("https://rp/r?sender=%p&message=%b", {"p": "+250788", "b": "Hé ☺ & more"},
         "https://rp/r?sender=%2B250788&message=H%C3%A9%20%E2%98%BA%20%26%20more"),
        ("https://rp/?a=%%d&b=%d", {"d": "2"}, "https://rp/?a=%d&b=2"),
        ("https://rp/%", {}, "https://rp/%"),
    ],
)
def test_fill_escapes(template, values, filled):
    assert kn.fill_escapes(template, values) == filled


def test_escape_values():
    record = {"from": "0099", "to": "+250788", "text": "hi", "uuid": "u-1", "username": "rp", "account": "acc"}
    values = kn.dlr_values(record, 8, "wired", "ab12", "smpp.a", 0)
    assert (values["d"], values["q"], values["P"], values["F"], values["i"], values["I"]) == ("8", "+99", "+250788", "ab12", "smpp.a", "u-1")
    assert (values["t"], values["T"], values["n"], values["o"]) == ("1970-01-01 00:00:00", "0", "rp", "acc")
    mo = kn.mo_values("+250788", "+2507000", "stop now", 60, "u-2", "smpp.b")
    assert (mo["p"], mo["P"], mo["a"], mo["b"], mo["T"], mo["I"], mo["i"], mo["k"]) == (
        "+250788", "+2507000", "stop now", "stop now", "60", "u-2", "smpp.b", "stop")


def test_parts_as_each_transport_splits():
    from ..core.channels import parse_channels

    registry = parse_channels(
        "channels:\n"
        "  - {uuid: 00000000-0000-4000-8000-000000000001, type: smpp, connection: a}\n"
        "  - {uuid: 00000000-0000-4000-8000-000000000002, type: external, config: {send_url: 'http://x', max_length: 100}}\n"
        "  - {uuid: 00000000-0000-4000-8000-000000000003, type: rest, aggregator: generic, config: {send_url: 'http://x'}}\n"
        "smpp_connections:\n  - {name: a, host: h, system_id: s}\n"
    )
    smpp, ext, rest = registry.channels.values()
    conn = registry.connections["a"]
    assert kn.parts_needed(smpp, conn, "x" * 160) == 1
    assert kn.parts_needed(smpp, conn, "x" * 161) == 2
    assert kn.parts_needed(smpp, conn, "€" * 80) == 1  # two septets each
    assert kn.parts_needed(smpp, conn, "€" * 81) == 2
    assert kn.parts_needed(smpp, conn, "☺" * 70) == 1 and kn.parts_needed(smpp, conn, "☺" * 71) == 2
    assert kn.parts_needed(smpp, conn, "☺" * 67 * 3) == 3 and kn.parts_needed(smpp, conn, "☺" * (67 * 3 + 1)) == 4
    assert kn.parts_needed(ext, None, "word " * 40) == 2
    assert kn.parts_needed(rest, None, "x" * 1000) == 1


@pytest.mark.parametrize("protocol", ["ucp", "cimd2"])
def test_parts_as_ucp_and_cimd2_split(protocol):
    from ..core.channels import parse_channels

    registry = parse_channels(
        "channels:\n"
        f"  - {{uuid: 00000000-0000-4000-8000-000000000001, type: {protocol}, connection: a}}\n"
        f"smsc_connections:\n  - {{name: a, protocol: {protocol}, host: h, port: 5000}}\n"
    )
    (chan,) = registry.channels.values()
    conn = registry.connections["a"]
    assert kn.parts_needed(chan, conn, "x" * 160) == 1
    assert kn.parts_needed(chan, conn, "x" * 161) == 2
    assert kn.parts_needed(chan, conn, "{" * 80) == 1 and kn.parts_needed(chan, conn, "{" * 81) == 2
    assert kn.parts_needed(chan, conn, "☺" * 70) == 1 and kn.parts_needed(chan, conn, "☺" * 71) == 2
    assert kn.parts_needed(chan, conn, "x" * 153 * 256) == 256
