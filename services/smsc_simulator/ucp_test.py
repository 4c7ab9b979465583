"""UCP/EMI simulator over real TCP on 127.0.0.1, driven by a client built on our codec
(:mod:`tests.framed_client`); every frame the simulator writes is checked by Kannel's
``decode_emimsg``. Kannel itself drives it in ``tests/peers``."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.protocols import ucp
from services.protocols.ucp import Frame
from services.smsc_simulator import UcpSimulator
from tests.framed_client import FramedClient
from tests.wirecheck import emi_problems, require

T = 5.0


class Client:
    """A UCP client: answers O/52 and O/53 (NACK with ``refuse`` EC for the next ones)."""

    def __init__(self):
        self.refuse: list[str] = []
        self.trn = 0
        self.conn: FramedClient | None = None

    def _answer(self, frame: Frame):
        if frame.is_result:
            return None
        if frame.ot in (ucp.OT_MO, ucp.OT_NOTIFICATION):
            if self.refuse:
                return ucp.nack(frame, self.refuse.pop(0))
            return ucp.ack(frame)
        return None

    @classmethod
    async def connect(cls, sim: UcpSimulator, user: str | None = "kannel", password: str = "secret"):
        self = cls()
        self.conn = await FramedClient.connect(sim.port, ucp.frame_reader(), ucp.encode_frame, self._answer)
        if user is not None:
            result = await self.request(ucp.login(0, user, password))
            self.login_result = result
        return self

    async def request(self, frame: Frame) -> ucp.Result:
        self.conn.send(frame)
        reply = await self.conn.expect(lambda f: f.is_result and f.trn == frame.trn and f.ot == frame.ot)
        return ucp.parse_result(reply)

    def next_trn(self) -> int:
        self.trn = (self.trn + 1) % 100
        return self.trn

    async def submit(self, to: str = "0612345678", text: str = "Hello", sender: str = "ALPHA",
                     notify: int = 3, ref: int = 1) -> list[ucp.Result]:
        frames = [ucp.submit(self.next_trn(), to, sender, part, notify=notify)
                  for part in ucp.message_fields(text, ref)]
        return [await self.request(f) for f in frames]

    async def notifications(self, count: int) -> list[dict[str, str]]:
        frames = await self.conn.wait_requests(count)
        return [ucp.fields_5x(f) for f in frames if f.ot == ucp.OT_NOTIFICATION]


@pytest.fixture
async def sim():
    async with UcpSimulator(accounts={"kannel": "secret"}, receipt_delay=0.01,
                            receipt_retry_delay=0.05, control_port=0) as s:
        yield s


@pytest.fixture
async def client(sim):
    c = await Client.connect(sim)
    assert c.login_result.ok
    yield c
    await c.conn.close()


async def test_login_refused_and_submit_before_login():
    async with UcpSimulator(accounts={"kannel": "secret"}) as sim:
        bad = await Client.connect(sim, password="wrong")
        assert (bad.login_result.ok, bad.login_result.ec) == (False, "07")
        [result] = await bad.submit()
        assert (result.ok, result.ec) == (False, "07")
        assert sim.stats()["bind_failures"] == 1 and len(sim.messages) == 0
        await bad.conn.close()
        open_sim = await Client.connect(sim, user=None)  # IP-authenticated: no login
        [result] = await open_sim.submit()
        assert not result.ok  # this simulator has accounts, so a login is required
        await open_sim.conn.close()
    async with UcpSimulator() as sim:  # no accounts: a client without login may submit
        c = await Client.connect(sim, user=None)
        [result] = await c.submit(text="no login")
        assert result.ok and sim.messages[-1]["text"] == "no login"
        await c.conn.close()


async def test_submit_ack_carries_adc_and_scts_and_the_notification_repeats_them(sim, client):
    text = "€[]{} and ~|^\\ with é"
    [result] = await client.submit(to="+0612345678", text=text, sender="Switchboard")
    assert result.ok
    adc, scts = ucp.split_adc_scts(result.sm)
    assert adc == "0612345678" and ucp.parse_scts(scts) is not None
    [note] = await client.notifications(1)
    assert (note["OAdC"], note["SCTS"], note["Dst"]) == ("0612345678", scts, "0")
    assert ucp.read_user_data(note).text.startswith("Message for 0612345678")
    message = sim.messages[-1]
    assert (message["text"], message["source"], message["destination"]) == (text, "Switchboard", "0612345678")
    assert message["message_ids"] == [result.sm] and message["data_coding"] == 0
    assert await sim.wait_for(lambda: sim.stats()["receipts_acked"] == 1, T)


async def test_scts_is_unique_per_recipient(sim, client):
    results = [r for _ in range(5) for r in await client.submit(to="250788123456")]
    results += await client.submit(to="33688123456")  # same last 7 digits: still unique
    stamps = [ucp.split_adc_scts(r.sm)[1] for r in results]
    assert len(set(stamps)) == 6
    other = await client.submit(to="33612345678")
    assert other[0].ok


async def test_ucs2_emoji_and_multipart_are_reassembled(sim, client):
    emoji = "Olá 😀 " * 20  # UCS2, 3 parts
    results = await client.submit(text=emoji, ref=77)
    assert len(results) == 3 and all(r.ok for r in results)
    gsm = "€" * 100  # 200 septets: 2 parts
    assert len(await client.submit(text=gsm, ref=78)) == 2
    assert await sim.wait_for(lambda: len(sim.messages) == 2, T)
    first, second = sim.messages
    assert (first["text"], first["parts"], first["data_coding"]) == (emoji, 3, 8)
    assert first["message_ids"] == [r.sm for r in results]
    assert (second["text"], second["parts"], second["data_coding"]) == (gsm, 2, 0)


@pytest.mark.parametrize("notify,rule,expected", [
    (3, None, "0"), (1, None, "0"), (2, None, None),
    (3, "UNDELIV", "2"), (1, "UNDELIV", None), (7, "ENROUTE", "1"), (0, None, None),
])
async def test_notification_follows_nt_and_receipt_rules(sim, client, notify, rule, expected):
    if rule:
        sim.set_faults(receipt_rules={"+2507": rule})
    [result] = await client.submit(to="250788000111", notify=notify)
    assert result.ok
    if expected is None:
        await asyncio.sleep(0.2)
        assert client.conn.requests == []
    else:
        [note] = await client.notifications(1)
        assert note["Dst"] == expected
        if expected == "2":
            assert note["Rsn"] == "000"


async def test_refused_notification_is_sent_again(sim, client):
    client.refuse = ["02"]
    [result] = await client.submit()
    notes = await client.notifications(2)
    assert [n["SCTS"] for n in notes] == [ucp.split_adc_scts(result.sm)[1]] * 2
    stats = sim.stats()
    assert (stats["receipts_failed"], stats["receipts_retried"]) == (1, 1)


async def test_alert_is_answered(client):
    result = await client.request(ucp.alert(client.next_trn(), "kannel"))
    assert result.ok


@pytest.mark.parametrize("faults,to,ec", [
    ({"error_by_prefix": {"+999": "6"}}, "99912345", "06"),
    ({"tps_limit": 1}, "0612345678", "04"),
])
async def test_scripted_errors(sim, client, faults, to, ec):
    sim.set_faults(**faults)
    results = [r for _ in range(2) for r in await client.submit(to=to)]
    assert results[-1].ec == ec and not results[-1].ok
    assert sim.stats()["submit_resp"][f"N/{ec}"] >= 1


async def test_no_response_then_drop(sim, client):
    sim.set_faults(no_response=1)
    frame = ucp.submit(client.next_trn(), "0612345678", "ALPHA", ucp.message_fields("x")[0])
    client.conn.send(frame)
    with pytest.raises(TimeoutError):
        await client.conn.expect(lambda f: f.is_result and f.trn == frame.trn, timeout=0.3)
    assert sim.stats()["submits_unanswered"] == 1
    sim.set_faults(drop_after=1)
    [result] = await client.submit()
    assert result.ok
    await asyncio.wait_for(client.conn.closed.wait(), T)
    assert sim.stats()["drops"] == 1


async def test_bad_frames_get_nacks_and_the_session_goes_on(sim, client):
    conn = client.conn
    conn.send(b"\x0207/00019/O/31/A//00\x03")  # checksum wrong
    assert ucp.parse_result(await conn.expect(lambda f: f.trn == 7)).ec == "01"
    conn.send(b"\x02garbage\x03")  # unreadable: nothing to answer
    conn.send(ucp.encode_frame(Frame(8, "O", 2, ("x",))))  # unknown OT
    assert ucp.parse_result(await conn.expect(lambda f: f.trn == 8)).ec == "03"
    conn.send(ucp.encode_frame(Frame(9, "O", 51, ("too", "few"))))
    assert ucp.parse_result(await conn.expect(lambda f: f.trn == 9)).ec == "02"
    conn.send(ucp.encode_frame(ucp.op_5x(10, 51, AdC="0612345678", OAdC="1234", MT="3", Msg="XYZ")))
    assert ucp.parse_result(await conn.expect(lambda f: f.trn == 10)).ec == "02"
    [result] = await client.submit(text="still fine")
    assert result.ok and sim.messages[-1]["text"] == "still fine"
    assert sim.stats()["generic_nacks"] == 5


async def test_mo_through_the_control_interface(sim, client):
    base = f"http://127.0.0.1:{sim.control_port}"
    async with httpx.AsyncClient(base_url=base, timeout=T) as http:
        r = await http.post("/mo", json={"from": "+447700900123", "to": "1234", "text": "Hi € [x]"})
        assert r.status_code == 200 and r.json()["statuses"] == [0]
        assert r.json()["status_names"] == ["ACK"]
        long = "😀 long " * 30
        r = await http.post("/mo", json={"from": "Bank", "to": "1234", "text": long})
        assert r.json()["statuses"] == [0, 0, 0, 0]
        client.refuse = ["02"]
        r = await http.post("/mo", json={"from": "1", "to": "2", "text": "refused"})
        assert r.json()["statuses"] == ["02"] and r.json()["status_names"][0].startswith("NACK 02")
        messages = (await http.get("/messages")).json()
        assert messages["count"] == 0
        assert (await http.get("/stats")).json()["protocol"] == "ucp"
    mos = [ucp.fields_5x(f) for f in client.conn.requests if f.ot == ucp.OT_MO]
    assert ucp.read_user_data(mos[0]).text == "Hi € [x]"
    assert (mos[0]["OAdC"], mos[0]["AdC"]) == ("447700900123", "1234")
    assert ucp.decode_oadc(mos[1]["OAdC"], mos[1]["OTOA"]) == "Bank"
    parts = [ucp.read_user_data(f) for f in mos[1:5]]
    assert {p.total for p in parts} == {4} and [p.seq for p in parts] == [1, 2, 3, 4]
    assert b"".join(p.payload for p in parts).decode("utf-16-be") == long
    assert all(len(f["SCTS"]) == 12 for f in mos)


async def test_control_submits_and_faults(sim, client):
    await client.submit(text="recorded")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.control_port}", timeout=T) as http:
        [record] = (await http.get("/submits")).json()["submits"]
        assert record["status"] == "ACK" and record["fields"]["OTOA"] == "5039"
        assert record["source"] == "ALPHA"
        r = await http.post("/faults", json={"error_by_prefix": {"+99": "x"}})
        assert r.status_code == 400 and "not 1-2 digits" in r.json()["error"]
        r = await http.post("/faults", json={"unbind": True})
        assert r.json()["unbound"] == 1
    await asyncio.wait_for(client.conn.closed.wait(), T)


async def test_every_frame_the_simulator_writes_passes_decode_emimsg(sim, client):
    require("decode_emimsg")
    await client.submit(text="€[]{} " * 30 + "😀", sender="Switchboard")  # UCS2 multipart
    await client.submit(text="plain", sender="+447700900000")
    client.refuse = ["02"]  # a refused notification comes again
    await client.request(ucp.alert(client.next_trn(), "kannel"))
    await sim.inject_mo("Bank", "1234", "MO € " * 50)
    await sim.inject_mo("447700900123", "1234", "😀")
    await client.notifications(4)
    client.conn.send(b"\x0207/00019/O/31/A//00\x03")
    await client.conn.expect(lambda f: f.trn == 7)
    frames = client.conn.frames_in()
    assert {ucp.decode_frame(f).ot for f in frames} == {31, 51, 52, 53, 60}
    assert emi_problems(frames) == []


async def test_receipts_wait_for_the_next_connection():
    """A notification whose connection fell waits, and goes to the next session of the same
    account (here an IP-authenticated one, which never logs in)."""
    async with UcpSimulator(receipt_delay=0.2) as sim:
        first = await Client.connect(sim, user=None)
        [result] = await first.submit(text="before the drop")
        await first.conn.close()
        assert await sim.wait_for(lambda: sim.stats()["receipts_pending"] == 1, T)
        second = await Client.connect(sim, user=None)
        [note] = await second.notifications(1)
        assert note["SCTS"] == ucp.split_adc_scts(result.sm)[1]
        await second.conn.close()
