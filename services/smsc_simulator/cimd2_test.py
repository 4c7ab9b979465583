"""CIMD2 simulator over real TCP on 127.0.0.1, driven by a client built on our codec
(:mod:`tests.framed_client`); every packet the simulator writes is checked by tshark's CIMD
dissector. Kannel itself drives it in ``tests/peers``."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.protocols import cimd2
from services.protocols.cimd2 import Packet
from services.smsc_simulator import Cimd2Simulator
from tests.framed_client import FramedClient
from tests.wirecheck import cimd_problems, require

T = 5.0


class Client:
    """A CIMD2 client: answers 20 and 23 (with ``900:<refuse>`` for the next ones)."""

    def __init__(self):
        self.refuse: list[int] = []
        self.numbers = cimd2.PacketNumbers()
        self.conn: FramedClient | None = None

    def _answer(self, packet: Packet):
        if packet.opcode in (cimd2.OP_DELIVER_MESSAGE, cimd2.OP_DELIVER_STATUS_REPORT):
            return cimd2.response(packet, error=self.refuse.pop(0) if self.refuse else None)
        return None

    @classmethod
    async def connect(cls, sim: Cimd2Simulator, user: str | None = "foo", password: str = "bar"):
        self = cls()
        self.conn = await FramedClient.connect(sim.port, cimd2.packet_reader(), cimd2.encode_packet, self._answer)
        if user is not None:
            self.login_result = await self.request(cimd2.login(self.numbers.next(), user, password))
        return self

    async def request(self, packet: Packet) -> Packet:
        self.conn.send(packet)
        return await self.conn.expect(lambda p: p.number == packet.number and p.is_response)

    async def submit(self, to: str = "0612345678", text: str = "Hello", sender: str = "1234",
                     status_report: int = 14, ref: int = 1) -> list[Packet]:
        packets = [cimd2.submit(self.numbers.next(), to, sender, part, status_report=status_report)
                   for part in cimd2.message_params(text, ref)]
        return [await self.request(p) for p in packets]

    async def reports(self, count: int) -> list[Packet]:
        return [p for p in await self.conn.wait_requests(count) if p.opcode == cimd2.OP_DELIVER_STATUS_REPORT]


@pytest.fixture
async def sim():
    async with Cimd2Simulator(accounts={"foo": "bar"}, receipt_delay=0.01, receipt_retry_delay=0.05,
                              control_port=0) as s:
        yield s


@pytest.fixture
async def client(sim):
    c = await Client.connect(sim)
    assert c.login_result.error is None and c.login_result.opcode == 51
    yield c
    await c.conn.close()


async def test_login_refused_and_submit_before_login(sim):
    bad = await Client.connect(sim, password="wrong")
    assert bad.login_result.error_code == "100" and bad.login_result.get(901) == "invalid login"
    [resp] = await bad.submit()
    assert resp.error_code == "1"
    assert sim.stats()["bind_failures"] == 1 and len(sim.messages) == 0
    await bad.conn.close()


async def test_submit_answer_carries_021_and_060_and_the_report_repeats_them(sim, client):
    text = "€[]{} and ~|^\\ with é @ _"
    [resp] = await client.submit(to="+0612345678", text=text, sender="Switchboard")
    assert resp.opcode == 53 and resp.error is None
    scts = resp.get(60)
    assert resp.get(21) == "0612345678" and cimd2.parse_timestamp(scts) is not None
    [report] = await client.reports(1)
    assert (report.get(21), report.get(60), report.get(61)) == ("0612345678", scts, "4")
    assert report.number % 2 == 0
    message = sim.messages[-1]
    assert (message["text"], message["source"], message["destination"]) == (text, "Switchboard", "0612345678")
    assert message["message_ids"] == [f"0612345678:{scts}"]
    assert await sim.wait_for(lambda: sim.stats()["receipts_acked"] == 1, T)


async def test_060_is_unique_per_recipient(sim, client):
    resps = [r for _ in range(5) for r in await client.submit(to="250788123456", status_report=0)]
    resps += await client.submit(to="33688123456", status_report=0)  # same last 7 digits
    assert len({r.get(60) for r in resps}) == 6


async def test_ucs2_emoji_and_multipart_are_reassembled(sim, client):
    emoji = "Olá 😀 " * 20
    resps = await client.submit(text=emoji, ref=77, status_report=0)
    assert len(resps) == 3 and all(r.error is None for r in resps)
    gsm = "€" * 100
    assert len(await client.submit(text=gsm, ref=78, status_report=0)) == 2
    assert await sim.wait_for(lambda: len(sim.messages) == 2, T)
    first, second = sim.messages
    assert (first["text"], first["parts"], first["data_coding"]) == (emoji, 3, 8)
    assert (second["text"], second["parts"], second["data_coding"]) == (gsm, 2, 0)


@pytest.mark.parametrize("wanted,rule,expected", [
    (14, None, "4"), (8, None, "4"), (4, None, None), (14, "UNDELIV", "3"), (8, "UNDELIV", None),
    (2, "EXPIRED", "2"), (1, "ENROUTE", "1"), (0, None, None),
])
async def test_report_follows_056_and_receipt_rules(sim, client, wanted, rule, expected):
    if rule:
        sim.set_faults(receipt_rules={"+2507": rule})
    [resp] = await client.submit(to="250788000111", status_report=wanted)
    assert resp.error is None
    if expected is None:
        await asyncio.sleep(0.2)
        assert client.conn.requests == []
    else:
        [report] = await client.reports(1)
        assert report.get(61) == expected


async def test_refused_report_is_sent_again(sim, client):
    client.refuse = [6]
    [resp] = await client.submit()
    reports = await client.reports(2)
    assert [r.get(60) for r in reports] == [resp.get(60)] * 2
    assert (sim.stats()["receipts_failed"], sim.stats()["receipts_retried"]) == (1, 1)


async def test_alive_and_logout(sim, client):
    assert (await client.request(cimd2.alive(client.numbers.next()))).opcode == 90
    assert (await client.request(cimd2.logout(client.numbers.next()))).opcode == 52
    await asyncio.wait_for(client.conn.closed.wait(), T)
    assert sim.stats()["unbinds"] == 1


@pytest.mark.parametrize("faults,to,code", [
    ({"error_by_prefix": {"+999": 300}}, "99912345", "300"),
    ({"tps_limit": 1}, "0612345678", "10"),
])
async def test_scripted_errors(sim, client, faults, to, code):
    sim.set_faults(**faults)
    resps = [r for _ in range(2) for r in await client.submit(to=to)]
    assert resps[-1].error_code == code and resps[-1].get(901)
    assert sim.stats()["submit_resp"][f"900:{code}"] >= 1


async def test_destination_count_errors_like_test_cimd2(client):
    resp = await client.request(Packet(3, client.numbers.next(), ((33, "x"),)))
    assert resp.error_code == "300"
    resp = await client.request(Packet(3, client.numbers.next(), ((21, "1"), (21, "2"), (33, "x"))))
    assert resp.error_code == "301"


async def test_no_response_then_drop(sim, client):
    sim.set_faults(no_response=1)
    packet = cimd2.submit(client.numbers.next(), "0612345678", "1234", cimd2.message_params("x")[0])
    client.conn.send(packet)
    with pytest.raises(TimeoutError):
        await client.conn.expect(lambda p: p.number == packet.number, timeout=0.3)
    sim.set_faults(drop_after=1)
    [resp] = await client.submit()
    assert resp.error is None
    await asyncio.wait_for(client.conn.closed.wait(), T)
    assert (sim.stats()["submits_unanswered"], sim.stats()["drops"]) == (1, 1)


async def test_bad_packets_get_nacks_and_the_session_goes_on(sim, client):
    conn = client.conn
    conn.send(b"\x0240:007\t41\x03")  # checksum wrong
    assert (await conn.expect(lambda p: p.number == 7)).opcode == 99
    conn.send(b"\x02junk\x03")  # no number: nothing to answer
    conn.send(cimd2.encode_packet(Packet(9, 9)))  # get (09): not offered
    unknown = await conn.expect(lambda p: p.number == 9)
    assert (unknown.opcode, unknown.error_code) == (98, "1")
    conn.send(cimd2.encode_packet(Packet(3, 11, ((21, "1"), (32, "zz"), (33, "x")))))
    assert (await conn.expect(lambda p: p.number == 11)).error_code == "302"
    conn.send(b"\x0240:013\t\x03")  # without checksum: fine
    assert (await conn.expect(lambda p: p.number == 13)).opcode == 90
    [resp] = await client.submit(text="still fine")
    assert resp.error is None and sim.messages[-1]["text"] == "still fine"


async def test_mo_through_the_control_interface(sim, client):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.control_port}", timeout=T) as http:
        r = await http.post("/mo", json={"from": "+447700900123", "to": "1234", "text": "Hi @ € [x]"})
        assert r.json()["statuses"] == [0] and r.json()["status_names"] == ["OK"]
        long = "😀 long " * 30
        r = await http.post("/mo", json={"from": "Bank", "to": "1234", "text": long})
        assert r.json()["statuses"] == [0, 0, 0, 0]
        client.refuse = [10]
        r = await http.post("/mo", json={"from": "1", "to": "2", "text": "refused"})
        assert r.json()["statuses"] == [10] and r.json()["status_names"][0].startswith("900:10")
        assert (await http.get("/stats")).json()["protocol"] == "cimd2"
    mos = [p for p in client.conn.requests if p.opcode == cimd2.OP_DELIVER_MESSAGE]
    assert all(p.number % 2 == 0 for p in mos)
    assert cimd2.read_user_data(mos[0]).text == "Hi @ € [x]"
    assert (mos[0].get(23), mos[0].get(21)) == ("447700900123", "1234")
    assert mos[1].get(27) == "Bank"
    parts = [cimd2.read_user_data(p) for p in mos[1:5]]
    assert [p.seq for p in parts] == [1, 2, 3, 4] and {p.total for p in parts} == {4}
    assert b"".join(p.payload for p in parts).decode("utf-16-be") == long


async def test_every_packet_the_simulator_writes_passes_tshark(sim, client):
    require("tshark", "text2pcap")
    await client.submit(text="€[]{} " * 30 + "😀", sender="Switchboard")
    await client.submit(text="plain", sender="+447700900000")
    client.refuse = [6]
    await client.request(cimd2.alive(client.numbers.next()))
    await sim.inject_mo("Bank", "1234", "MO € _ @ " * 30)
    await sim.inject_mo("447700900123", "1234", "😀")
    await client.reports(4)
    client.conn.send(b"\x0240:007\t41\x03")
    await client.conn.expect(lambda p: p.number == 7)
    packets = client.conn.frames_in()
    assert {cimd2.decode_packet(p).opcode for p in packets} == {20, 23, 51, 53, 90, 99}
    assert cimd_problems(packets) == []


@pytest.mark.parametrize("protocol", ["ucp", "cimd2"])
async def test_smsc_sim_command_speaks_the_protocol(protocol):
    """``switchboard smsc-sim --protocol ...`` as a process: login checked, errors by prefix,
    JSON logs without the password, exit 0 on SIGTERM."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from services.protocols import ucp

    root = Path(__file__).resolve().parents[2]
    error = "06" if protocol == "ucp" else "300"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.smsc_simulator", "--protocol", protocol, "--port", "0",
        "--control-port", "0", "--system-id", "demo", "--password", "topsecret",
        "--error-prefix", f"+999={error}", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=str(root), env={**os.environ, "PYTHONPATH": str(root)})
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
        assert first["msg"] == "smsc simulator listening" and first["protocol"] == protocol
        port = first["port"]
        if protocol == "ucp":
            conn = await FramedClient.connect(port, ucp.frame_reader(), ucp.encode_frame, lambda f: None)
            conn.send(ucp.login(0, "demo", "topsecret"))
            assert ucp.parse_result(await conn.expect(lambda f: f.ot == 60)).ok
            conn.send(ucp.submit(1, "99955", "1234", ucp.message_fields("x")[0]))
            assert ucp.parse_result(await conn.expect(lambda f: f.ot == 51)).ec == error
        else:
            conn = await FramedClient.connect(port, cimd2.packet_reader(), cimd2.encode_packet, lambda p: None)
            conn.send(cimd2.login(1, "demo", "topsecret"))
            assert (await conn.expect(lambda p: p.opcode == 51)).error is None
            conn.send(cimd2.submit(3, "99955", "1234", cimd2.message_params("x")[0]))
            assert (await conn.expect(lambda p: p.opcode == 53)).error_code == error
        await conn.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "topsecret" not in out.decode() + err.decode()
    assert any(json.loads(line)["msg"] == "logged in" for line in out.decode().splitlines())
