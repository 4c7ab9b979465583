"""Kannel's ``emi`` and ``cimd2`` drivers (Debian ``kannel`` 1.4.5) bound to our simulator on
loopback: an independent client proves the simulator behaves like a real SMSC.

* MT through smsbox ``sendsms`` arrives at the simulator with the exact text: GSM with
  ``€[]{}``, UCS2 with an emoji, and a concatenated message.
* DLRs: type 8 (SMSC accepted) then type 1 (delivered) come back through ``dlr-url``, which
  needs the simulator's ACK (UCP ``A//AdC:SCTS``, CIMD2 ``053`` with ``060``) and its
  notification (UCP O/53, CIMD2 23) to carry the same SCTS for that recipient.
* MO injected at the simulator reaches Kannel's ``get-url`` readable (GSM, UCS2, and a
  multipart one that bearerbox joins).
* Failures: a "not delivered" notification gives DLR 2, a refused submit DLR 16.

One Kannel per protocol for the whole module (start ~1 s, stop up to 3 s).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from services.smsc_simulator import Cimd2Simulator, UcpSimulator

from .kannel import HttpSink, Kannel, require_kannel

DRIVERS = {"emi": (UcpSimulator, "kannel", "secret"), "cimd2": (Cimd2Simulator, "foo", "bar")}


@pytest.fixture(scope="module", params=sorted(DRIVERS))
async def peer(request):
    require_kannel()
    cls, user, password = DRIVERS[request.param]
    sim = await cls(accounts={user: password}, receipt_delay=0.05).start()
    sink = await HttpSink().start()
    with tempfile.TemporaryDirectory(prefix=f"kannel-{request.param}-") as tmp:
        kannel = Kannel(request.param, sim.port, user, password, sink.port, Path(tmp))
        try:
            await kannel.start()
            yield kannel, sim, sink
        finally:
            await kannel.stop()
            await sink.stop()
            await sim.stop()


def dlr_url(sink: HttpSink, message: str) -> str:
    return f"http://127.0.0.1:{sink.port}/dlr?id={message}&type=%d&ts=%F&smsc=%i"


async def send_and_receive(peer, text: str, tag: str, **params) -> dict:
    kannel, sim, sink = peer
    to = f"06123{abs(hash(tag)) % 100000:05d}"
    r = await kannel.sendsms(to=to, text=text, **{"dlr-mask": "31", "dlr-url": dlr_url(sink, tag)}, **params)
    assert r.status_code == 202 and "Accepted" in r.text, r.text
    assert await sim.wait_for(lambda: any(m["destination"] == to for m in sim.messages), 15), kannel.log_tail()
    return next(m for m in sim.messages if m["destination"] == to)


async def test_gsm_text_with_escapes_arrives_exactly(peer):
    text = "Price: 5€ [list] {set} ~ | ^ \\ @ £ é _"
    message = await send_and_receive(peer, text, "gsm", **{"from": "1234"})
    assert (message["text"], message["data_coding"], message["parts"]) == (text, 0, 1)
    assert message["source"] == "1234"


async def test_ucs2_with_an_emoji_arrives_exactly(peer):
    text = "Привет 😀 مرحبا"
    message = await send_and_receive(peer, text, "ucs2", coding="2", **{"from": "ALPHA"})
    assert (message["text"], message["data_coding"]) == (text, 8)
    assert message["source"] == "ALPHA"


async def test_long_text_arrives_reassembled(peer):
    text = ("Switchboard multipart € test. " * 8)[:230]
    message = await send_and_receive(peer, text, "multi", **{"from": "1234"})
    assert (message["text"], message["parts"]) == (text, 2)


async def test_dlr_8_then_1_come_back_through_dlr_url(peer):
    kannel, sim, sink = peer
    await send_and_receive(peer, "receipt please", "dlr", **{"from": "1234"})
    calls = await sink.wait(lambda reqs: [q["type"] for q in sink.of("/dlr", id="dlr")][-1:] == ["1"])
    types = [q["type"] for q in sink.of("/dlr", id="dlr")]
    assert types == ["8", "1"], (types, calls)
    assert {q["smsc"] for q in sink.of("/dlr", id="dlr")} == {kannel.smsc_id}
    assert sim.stats()["receipts_acked"] >= 1


async def test_mo_reaches_get_url_readable(peer):
    kannel, sim, sink = peer
    text = "Hi € [x] @ home"
    statuses = await sim.inject_mo("447700900123", "1234", text)
    assert statuses == [0]
    await sink.wait(lambda reqs: sink.of("/mo", **{"from": "447700900123"}))
    [mo] = sink.of("/mo", **{"from": "447700900123"})
    assert (mo["to"], mo["text"], mo["smsc"]) == ("1234", text, kannel.smsc_id)


async def test_ucs2_mo_reaches_get_url_readable(peer):
    kannel, sim, sink = peer
    text = "Olá 😀"
    assert await sim.inject_mo("447700900124", "1234", text) == [0]
    await sink.wait(lambda reqs: sink.of("/mo", **{"from": "447700900124"}))
    [mo] = sink.of("/mo", **{"from": "447700900124"})
    assert mo["text"] == text  # mo-recode = true: smsbox hands it on as UTF-8


async def test_kannel_keeps_the_link_up(peer):
    kannel, sim, _ = peer
    line = next(x for x in (await kannel.status()).splitlines() if kannel.smsc_id in x)
    assert "online" in line
    assert sim.stats()["binds"] >= 1 and sim.stats()["bind_failures"] == 0


async def test_failed_receipt_and_refused_submit_reach_dlr_url(peer):
    """A notification saying "not delivered" gives DLR 2; a refused submit gives DLR 16."""
    kannel, sim, sink = peer
    sim.set_faults(receipt_rules={"+0699": "UNDELIV"},
                   error_by_prefix={"+0698": "06" if kannel.driver == "emi" else 300})
    try:
        r = await kannel.sendsms(to="0699000001", text="will fail", **{
            "from": "1234", "dlr-mask": "31", "dlr-url": dlr_url(sink, "undeliv")})
        assert r.status_code == 202, r.text
        r = await kannel.sendsms(to="0698000001", text="refused", **{
            "from": "1234", "dlr-mask": "31", "dlr-url": dlr_url(sink, "refused")})
        assert r.status_code == 202, r.text
        await sink.wait(lambda reqs: "2" in [q["type"] for q in sink.of("/dlr", id="undeliv")]
                        and sink.of("/dlr", id="refused"))
    finally:
        sim.set_faults(clear=True)
    assert [q["type"] for q in sink.of("/dlr", id="undeliv")] == ["8", "2"]
    assert [q["type"] for q in sink.of("/dlr", id="refused")] == ["16"]


async def test_multipart_mo_reaches_get_url_whole(peer):
    kannel, sim, sink = peer
    text = ("A long reply from a phone, € included. " * 6)[:220]
    assert await sim.inject_mo("447700900125", "1234", text) == [0, 0]
    await sink.wait(lambda reqs: sink.of("/mo", **{"from": "447700900125"}))
    [mo] = sink.of("/mo", **{"from": "447700900125"})  # bearerbox joins the parts
    assert mo["text"] == text
