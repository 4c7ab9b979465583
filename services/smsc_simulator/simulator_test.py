"""SMSC simulator over real TCP on 127.0.0.1.

The ESME side is either our codec over asyncio streams (:class:`Esme`) or smpplib's own
blocking ``Client`` in a thread, so the simulator is checked against an independent
implementation too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import smpplib.client
import smpplib.exceptions
import smpplib.gsm

from services.protocols.smpp import (
    SequenceGenerator,
    encode_pdu,
    extract_segment,
    join_segments,
    make_pdu,
    make_response,
    normalise_message_id,
    parse_receipt,
    read_pdu,
    receipt_id_keys,
    split_message,
)
from services.smsc_simulator import NoReceiverError, SmscSimulator

ROOT = Path(__file__).resolve().parents[2]
T = 3.0  # upper bound for every wait


class Esme:
    """A minimal asyncio ESME built on the codec: answers deliver_sm / enquire_link / unbind
    by itself and collects what it received."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.seq = SequenceGenerator()
        self.pending: dict[int, asyncio.Future] = {}
        self.delivered: asyncio.Queue = asyncio.Queue()
        self.deliver_statuses: list[int] = []  # statuses to answer deliver_sm with, then 0
        self.unbind_received = False
        self.closed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    @classmethod
    async def connect(cls, port: int, bind: str | None = "transceiver", system_id="esme", password="pw"):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), T)
        esme = cls(reader, writer)
        resp = None
        if bind:
            resp = await esme.request(make_pdu(f"bind_{bind}", sequences=esme.seq, system_id=system_id,
                                               password=password, system_type=""))
        return esme, resp

    async def _run(self):
        try:
            while True:
                pdu = await read_pdu(self.reader)
                if pdu.command == "deliver_sm":
                    status = self.deliver_statuses.pop(0) if self.deliver_statuses else 0
                    self.send(make_response(pdu, status=status))
                    await self.delivered.put(pdu)
                elif pdu.command in ("enquire_link", "unbind"):
                    self.unbind_received |= pdu.command == "unbind"
                    self.send(make_response(pdu))
                elif pdu.sequence in self.pending:
                    self.pending.pop(pdu.sequence).set_result(pdu)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()

    def send(self, pdu):
        self.writer.write(encode_pdu(pdu))

    async def request(self, pdu, timeout: float = T):
        fut = asyncio.get_running_loop().create_future()
        self.pending[pdu.sequence] = fut
        self.send(pdu)
        return await asyncio.wait_for(fut, timeout)

    def submit_pdu(self, **fields):
        fields.setdefault("source_addr", "Weni")
        fields.setdefault("destination_addr", "250788123123")
        fields.setdefault("short_message", b"hello")
        return make_pdu("submit_sm", sequences=self.seq, **fields)

    async def submit(self, timeout: float = T, **fields):
        return await self.request(self.submit_pdu(**fields), timeout)

    async def next_delivered(self, timeout: float = T):
        return await asyncio.wait_for(self.delivered.get(), timeout)

    async def close(self):
        self.writer.close()
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


@pytest.fixture
async def sim_factory():
    sims: list[SmscSimulator] = []
    esmes: list[Esme] = []

    async def make(**kwargs) -> SmscSimulator:
        kwargs.setdefault("receipt_delay", 0.02)
        sim = SmscSimulator("127.0.0.1", 0, **kwargs)
        await sim.start()
        sims.append(sim)
        return sim

    async def connect(sim, **kwargs) -> Esme:
        esme, resp = await Esme.connect(sim.port, **kwargs)
        esmes.append(esme)
        assert resp is None or resp.status == 0, resp.status
        return esme

    make.connect = connect
    yield make
    for esme in esmes:
        await esme.close()
    for sim in sims:
        await sim.stop()


# ------------------------------------------------------------------ binds and basics

def _smpplib_bind(port: int, system_id: str, password: str) -> int:
    client = smpplib.client.Client("127.0.0.1", port, timeout=T, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        client.unbind()
        return 0
    except smpplib.exceptions.PDUError as exc:
        return exc.args[1]
    finally:
        client.disconnect()


async def test_binds_checked_against_accounts_with_smpplib_client(sim_factory):
    sim = await sim_factory(accounts={"weni": "s3cret"})
    assert await asyncio.to_thread(_smpplib_bind, sim.port, "weni", "s3cret") == 0
    assert await asyncio.to_thread(_smpplib_bind, sim.port, "weni", "wrong") == 0x0E  # ESME_RINVPASWD
    assert await asyncio.to_thread(_smpplib_bind, sim.port, "nobody", "s3cret") == 0x0F  # ESME_RINVSYSID
    stats = sim.stats()
    assert stats["binds"] == 1 and stats["bind_failures"] == 2 and stats["unbinds"] == 1


async def test_unbound_submit_enquire_link_unknown_command_and_double_bind(sim_factory):
    sim = await sim_factory()
    esme = await sim_factory.connect(sim, bind=None)
    resp = await esme.submit()
    assert (resp.command, resp.status) == ("submit_sm_resp", 0x04)  # ESME_RINVBNDSTS
    assert (await esme.request(make_pdu("enquire_link", sequences=esme.seq))).command == "enquire_link_resp"
    nack = await esme.request(make_pdu("query_sm", sequences=esme.seq, message_id="1", source_addr="1"))
    assert (nack.command, nack.status) == ("generic_nack", 0x03)
    bound = await esme.request(make_pdu("bind_transmitter", sequences=esme.seq, system_id="a", password="b"))
    assert bound.status == 0 and bound.system_id == "SWSIM"
    again = await esme.request(make_pdu("bind_transmitter", sequences=esme.seq, system_id="a", password="b"))
    assert again.status == 0x05  # ESME_RALYBND
    # a receiver may not submit
    rx = await sim_factory.connect(sim, bind="receiver")
    assert (await rx.submit()).status == 0x04


async def test_bogus_command_length_gets_generic_nack_and_close(sim_factory):
    sim = await sim_factory()
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(struct.pack(">LLLL", 8, 4, 0, 1))
    nack = await asyncio.wait_for(read_pdu(reader), T)
    assert (nack.command, nack.status) == ("generic_nack", 0x02)  # ESME_RINVCMDLEN
    assert await asyncio.wait_for(reader.read(), T) == b""  # closed
    writer.close()


async def test_esme_unbind_is_answered_and_connection_closed(sim_factory):
    sim = await sim_factory()
    esme = await sim_factory.connect(sim)
    resp = await esme.request(make_pdu("unbind", sequences=esme.seq))
    assert resp.command == "unbind_resp" and resp.status == 0
    await asyncio.wait_for(esme.closed.wait(), T)
    assert await sim.wait_for(lambda: not sim.bound_sessions(), T)


# ------------------------------------------------------------------ submits and receipts

@pytest.mark.parametrize("id_format,pattern", [("hex", r"[0-9a-f]{8}"), ("dec", r"[1-9][0-9]*")])
async def test_submit_resp_message_id_format(sim_factory, id_format, pattern):
    sim = await sim_factory(id_format=id_format, id_start=0x1E240)
    esme = await sim_factory.connect(sim)
    resp = await esme.submit()
    assert resp.status == 0 and re.fullmatch(pattern, resp.message_id)
    assert resp.message_id == ("0001e240" if id_format == "hex" else "123456")
    second = await esme.submit()
    assert second.message_id != resp.message_id
    assert sim.submits[-1]["message_id"] == second.message_id
    assert sim.stats()["submit_resp"] == {"ESME_ROK": 2}


async def test_receipt_delivered_with_tlvs(sim_factory):
    sim = await sim_factory()
    esme = await sim_factory.connect(sim)
    resp = await esme.submit(source_addr="Weni", destination_addr="250788123123", registered_delivery=1,
                             short_message=b"Love is patient. Love is kind.")
    dlr = await esme.next_delivered()
    assert dlr.esm_class == 0x04
    assert (dlr.source_addr, dlr.destination_addr) == ("250788123123", "Weni")
    assert dlr.receipted_message_id == resp.message_id and dlr.message_state == 2
    parsed = parse_receipt(dlr.short_message)
    assert parsed["id"] == resp.message_id and parsed["stat"] == "DELIVRD" and parsed["err"] == "000"
    assert parsed["text"] == "Love is patient. Lov" and parsed["dlvrd"] == "001"
    assert await sim.wait_for(lambda: sim.stats()["receipts_acked"] == 1, T)
    # no receipt without registered_delivery
    await esme.submit(registered_delivery=0)
    with pytest.raises(asyncio.TimeoutError):
        await esme.next_delivered(timeout=0.2)


@pytest.mark.parametrize("dlr_id_format,connector_format", [("dec", "hex"), ("hex", "same")])
async def test_receipt_id_in_another_base_matches_after_normalisation(sim_factory, dlr_id_format, connector_format):
    sim = await sim_factory(id_format="hex", dlr_id_format=dlr_id_format, id_start=0xABCDE)
    esme = await sim_factory.connect(sim)
    resp = await esme.submit(registered_delivery=1)
    dlr = await esme.next_delivered()
    receipt_id = parse_receipt(dlr.short_message)["id"]
    assert receipt_id == dlr.receipted_message_id
    assert receipt_id == ("703710" if dlr_id_format == "dec" else "ABCDE") and resp.message_id == "000abcde"
    assert normalise_message_id(resp.message_id) in receipt_id_keys(receipt_id, connector_format)


async def test_receipt_rules_and_failure_only_receipts(sim_factory):
    sim = await sim_factory(faults={"receipt_rules": {"+2507": "UNDELIV", "999": "REJECTD"}})
    esme = await sim_factory.connect(sim)
    await esme.submit(destination_addr="250788000000", registered_delivery=1)
    dlr = await esme.next_delivered()
    assert parse_receipt(dlr.short_message)["stat"] == "UNDELIV" and dlr.message_state == 5
    assert parse_receipt(dlr.short_message)["dlvrd"] == "000"
    await esme.submit(destination_addr="999000", registered_delivery=2)  # failure only: REJECTD is one
    dlr = await esme.next_delivered()
    assert parse_receipt(dlr.short_message)["stat"] == "REJECTD" and dlr.message_state == 8
    await esme.submit(destination_addr="33600000000", registered_delivery=2)  # delivered: no receipt
    with pytest.raises(asyncio.TimeoutError):
        await esme.next_delivered(timeout=0.2)


async def test_refused_receipt_is_sent_again(sim_factory):
    sim = await sim_factory(receipt_retry_delay=0.05, receipt_max_retries=2)
    esme = await sim_factory.connect(sim)
    esme.deliver_statuses = [0x64, 0x64]  # ESME_RX_T_APPN twice, then accept
    resp = await esme.submit(registered_delivery=1)
    for _ in range(3):
        dlr = await esme.next_delivered()
        assert dlr.receipted_message_id == resp.message_id
    assert await sim.wait_for(lambda: sim.stats()["receipts_acked"] == 1, T)
    stats = sim.stats()
    assert stats["receipts_failed"] == 2 and stats["receipts_retried"] == 2 and stats["receipts_sent"] == 3


async def test_receipt_retries_are_bounded(sim_factory):
    sim = await sim_factory(receipt_retry_delay=0.02, receipt_max_retries=1)
    esme = await sim_factory.connect(sim)
    esme.deliver_statuses = [0x64] * 10
    await esme.submit(registered_delivery=1)
    await esme.next_delivered()
    await esme.next_delivered()
    with pytest.raises(asyncio.TimeoutError):
        await esme.next_delivered(timeout=0.2)
    assert sim.stats()["receipts_sent"] == 2 and sim.stats()["receipts_acked"] == 0


async def test_receipt_goes_to_receiver_of_same_system_id_and_waits_for_one(sim_factory):
    sim = await sim_factory()
    tx = await sim_factory.connect(sim, bind="transmitter", system_id="acme")
    other = await sim_factory.connect(sim, bind="receiver", system_id="other")
    resp = await tx.submit(registered_delivery=1)
    assert await sim.wait_for(lambda: sim.stats()["receipts_pending"] == 1, T)
    rx = await sim_factory.connect(sim, bind="receiver", system_id="acme")
    dlr = await rx.next_delivered()
    assert dlr.receipted_message_id == resp.message_id
    assert other.delivered.empty() and tx.delivered.empty()


# ------------------------------------------------------------------ multipart

@pytest.mark.parametrize("mode", ["udh", "udh16", "sar", "payload"])
@pytest.mark.parametrize("text,coding", [
    ("Price {10}€ [ok] ~x~ |a|\\b^ " * 18, "gsm7"),
    ("Привет, мир 😀! " * 12, "ucs2"),
    ("ça coûte 10 € " * 20, "latin1"),
], ids=["gsm7", "ucs2", "latin1"])
async def test_multipart_submits_are_reassembled(sim_factory, mode, text, coding):
    if coding == "latin1":
        text = text.replace("€", "E")
    sim = await sim_factory()
    esme = await sim_factory.connect(sim)
    parts = split_message(text, coding, mode, ref=0x1AB)
    assert len(parts) >= (1 if mode == "payload" else 3)
    ids = []
    for part in parts:
        resp = await esme.submit(destination_addr="250788123123", **part.pdu_fields())
        assert resp.status == 0
        ids.append(resp.message_id)
    assert await sim.wait_for(lambda: len(sim.messages) == 1, T)
    msg = sim.messages[0]
    assert msg["text"] == text and msg["parts"] == len(parts) and msg["message_ids"] == ids
    expected_kind = {"udh": "udh8"}.get(mode, mode) if len(parts) > 1 else "payload"
    assert msg["kind"] == expected_kind
    assert len(sim.submits) == len(parts)


async def test_multipart_and_receipts_with_smpplib_client(sim_factory):
    """smpplib's own splitter (UDH, 8-bit ref), client and parser, in a thread."""
    sim = await sim_factory(receipt_delay=0.3)  # receipts after every submit_sm_resp
    text = "Hello from smpplib " * 12

    def run():
        client = smpplib.client.Client("127.0.0.1", sim.port, timeout=T, allow_unknown_opt_params=True)
        client.connect()
        client.bind_transceiver(system_id="lib", password="x")
        parts, coding, esm_class = smpplib.gsm.make_parts(text)
        ids, receipts = [], []
        for part in parts:
            client.send_message(source_addr="Lib", destination_addr="3361234", short_message=part,
                                data_coding=coding, esm_class=esm_class, registered_delivery=1)
            resp = client.read_pdu()
            ids.append(resp.message_id.decode())
        client.set_message_received_handler(lambda pdu: receipts.append(pdu))
        while len(receipts) < len(parts):
            client.read_once()  # answers each deliver_sm with deliver_sm_resp
        client.unbind()
        client.disconnect()
        return ids, receipts

    ids, receipts = await asyncio.to_thread(run)
    assert len(ids) == 2
    assert await sim.wait_for(lambda: len(sim.messages) == 1, T)
    assert sim.messages[0]["text"] == text and sim.messages[0]["message_ids"] == ids
    assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(ids)
    assert {r.message_state for r in receipts} == {2} and {r.esm_class for r in receipts} == {4}
    assert await sim.wait_for(lambda: sim.stats()["receipts_acked"] == 2, T)


# ------------------------------------------------------------------ MO injection

@pytest.mark.parametrize("split", ["udh", "udh16", "sar", "payload"])
async def test_inject_mo_multipart_reaches_bound_client(sim_factory, split):
    sim = await sim_factory()
    esme = await sim_factory.connect(sim, bind="receiver")
    text = "Bonjour {tout} le monde € " * 10
    statuses = await sim.inject_mo("+250788123123", "8080", text, coding="auto", split=split)
    assert statuses and set(statuses) == {0}
    segments = []
    for _ in statuses:
        pdu = await esme.next_delivered()
        assert (pdu.source_addr, pdu.source_addr_ton, pdu.destination_addr) == ("250788123123", 1, "8080")
        segments.append(extract_segment(pdu))
    segments.sort(key=lambda s: s.seq)
    assert join_segments(segments) == text
    assert sim.stats()["mo_sent"] == len(statuses) == sim.stats()["mo_acked"]


async def test_inject_mo_single_ucs2_statuses_and_no_receiver(sim_factory):
    sim = await sim_factory()
    with pytest.raises(NoReceiverError):
        await sim.inject_mo("123", "456", "hi")
    esme = await sim_factory.connect(sim, bind="transceiver")
    esme.deliver_statuses = [0x08]
    assert await sim.inject_mo("Info", "250788123123", "Привет") == [0x08]
    pdu = await esme.next_delivered()
    assert pdu.data_coding == 8 and pdu.source_addr_ton == 5 and extract_segment(pdu).text == "Привет"
    assert await sim.inject_mo("Info", "250788123123", "again") == [0]
    assert sim.stats()["mo_failed"] == 1 and sim.stats()["mo_acked"] == 1


# ------------------------------------------------------------------ faults

async def test_throttling_fault(sim_factory):
    sim = await sim_factory(faults={"tps_limit": 3})
    esme = await sim_factory.connect(sim)
    pdus = [esme.submit_pdu() for _ in range(6)]
    resps = await asyncio.gather(*(esme.request(p) for p in pdus))
    statuses = sorted(r.status for r in resps)
    assert statuses == [0, 0, 0, 0x58, 0x58, 0x58]
    assert sim.stats()["submit_resp"] == {"ESME_ROK": 3, "ESME_RTHROTTLED": 3}
    assert all(r.message_id in ("", None) for r in resps if r.status)


async def test_error_by_destination_prefix(sim_factory):
    sim = await sim_factory(faults={"error_by_prefix": {"+999": 0x0B, "+9998": "ESME_RINVSRCADR"}})
    esme = await sim_factory.connect(sim)
    assert (await esme.submit(destination_addr="999123")).status == 0x0B
    assert (await esme.submit(destination_addr="+99981")).status == 0x0A  # longest prefix wins
    assert (await esme.submit(destination_addr="250788")).status == 0
    assert len(sim.messages) == 1  # refused submits are not messages


async def test_no_response_for_a_count_then_until_cleared(sim_factory):
    sim = await sim_factory(faults={"no_response": 2})
    esme = await sim_factory.connect(sim)
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            await esme.submit(timeout=0.15)
    assert (await esme.submit()).status == 0
    sim.set_faults(no_response=-1)
    for _ in range(3):
        with pytest.raises(asyncio.TimeoutError):
            await esme.submit(timeout=0.1)
    sim.set_faults(clear=True)
    assert (await esme.submit()).status == 0
    assert sim.stats()["submits_unanswered"] == 5 and sim.stats()["submits"] == 7


async def test_connection_dropped_after_n_submits(sim_factory):
    sim = await sim_factory(faults={"drop_after": 2})
    esme = await sim_factory.connect(sim)
    assert (await esme.submit()).status == 0
    assert (await esme.submit()).status == 0
    await asyncio.wait_for(esme.closed.wait(), T)
    assert not esme.unbind_received and sim.stats()["drops"] == 1
    # one-shot: a new connection works normally
    again = await sim_factory.connect(sim)
    for _ in range(3):
        assert (await again.submit()).status == 0
    assert not again.closed.is_set()


async def test_unbind_from_smsc_side(sim_factory):
    sim = await sim_factory()
    a = await sim_factory.connect(sim, system_id="a")
    b = await sim_factory.connect(sim, system_id="b")
    assert await sim.unbind(system_id="a") == 1
    await asyncio.wait_for(a.closed.wait(), T)
    assert a.unbind_received and not b.closed.is_set()
    assert (await b.submit()).status == 0


# ------------------------------------------------------------------ HTTP control interface

async def test_http_control_interface(sim_factory):
    sim = await sim_factory(control_port=0)
    esme = await sim_factory.connect(sim)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.control_port}", timeout=T) as http:
        assert (await http.get("/health")).json()["status"] == "ok"
        r = await http.post("/faults", json={"error_by_prefix": {"+999": "ESME_RINVDSTADR"}, "tps_limit": 0})
        assert r.status_code == 200 and r.json()["faults"]["error_by_prefix"] == {"+999": "ESME_RINVDSTADR"}
        assert (await esme.submit(destination_addr="99912")).status == 0x0B
        assert (await esme.submit(destination_addr="25078", short_message=b"via http")).status == 0
        r = await http.post("/mo", json={"from": "+250788123123", "to": "8080", "text": "yes " * 50, "split": "sar"})
        assert r.status_code == 200 and r.json()["status_names"] == ["ESME_ROK", "ESME_ROK"]
        got = [await esme.next_delivered(), await esme.next_delivered()]
        assert join_segments(sorted((extract_segment(p) for p in got), key=lambda s: s.seq)) == "yes " * 50
        messages = (await http.get("/messages")).json()["messages"]
        assert [m["text"] for m in messages] == ["via http"]
        submits = (await http.get("/submits?limit=1")).json()["submits"]
        assert submits[0]["short_message"] == b"via http".hex()
        stats = (await http.get("/stats")).json()
        assert stats["submits"] == 2 and stats["mo_sent"] == 2 and stats["binds"] == 1
        assert stats["submit_resp"] == {"ESME_RINVDSTADR": 1, "ESME_ROK": 1}
        assert (await http.delete("/messages")).status_code == 200
        assert (await http.get("/messages")).json()["messages"] == []
        assert (await http.post("/faults", json={"bogus": 1})).status_code == 400
        assert (await http.post("/faults", content=b"{not json")).status_code == 400
        assert (await http.post("/mo", json={"from": "1"})).status_code == 400
        assert (await http.get("/nope")).status_code == 404
        assert (await http.put("/stats")).status_code == 405
        r = await http.post("/faults", json={"clear": True, "unbind": True})
        assert r.json()["unbound"] == 1 and r.json()["faults"]["error_by_prefix"] == {}
        await asyncio.wait_for(esme.closed.wait(), T)
        assert (await http.post("/mo", json={"from": "1", "to": "2", "text": "x"})).status_code == 409


# ------------------------------------------------------------------ the process

async def test_python_m_runs_logs_json_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.smsc_simulator", "--port", "0", "--control-port", "0",
        "--system-id", "demo", "--password", "topsecret", "--receipt-delay", "0.01",
        "--id-format", "dec", "--error-prefix", "+999=ESME_RINVDSTADR",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env)
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
        assert first["msg"] == "smsc simulator listening"
        esme, resp = await Esme.connect(first["port"], system_id="demo", password="topsecret")
        assert resp.status == 0
        assert (await esme.submit(destination_addr="99955")).status == 0x0B
        ok = await esme.submit(registered_delivery=1)
        assert ok.message_id.isdigit()
        assert (await esme.next_delivered()).receipted_message_id == ok.message_id
        await esme.close()
        bad, resp = await Esme.connect(first["port"], system_id="demo", password="nope")
        assert resp.status == 0x0E
        await bad.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines and all(json.loads(line)["msg"] for line in lines)
    assert "topsecret" not in out.decode() + err.decode()
    assert any(json.loads(line)["msg"] == "bind refused" for line in lines)
