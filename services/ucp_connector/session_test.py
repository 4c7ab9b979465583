"""The UCP session's frames against a scripted peer over TCP: what it answers to the SMSC's
requests, malformed frames included, and how it logs in."""

from __future__ import annotations

import asyncio

import pytest

from services.core.channels import UcpConnection
from services.protocols import ucp
from services.smsc.session import LoginRefused
from services.smsc.testkit import ScriptedSmsc

from .session import UcpSession


def frames(peer: ScriptedSmsc) -> list[ucp.Frame]:
    return [ucp.decode_frame(raw) for raw in peer.received]


def login_ok(raw: bytes) -> bytes | None:
    frame = ucp.decode_frame(raw)
    return ucp.encode_frame(ucp.ack(frame)) if frame.ot == ucp.OT_LOGIN else None


async def opened(answer=login_ok, **connection) -> tuple[ScriptedSmsc, UcpSession, list]:
    peer = await ScriptedSmsc(answer).start()
    delivered: list = []

    async def on_deliver(frame):
        delivered.append(frame)
        return ""

    conn = UcpConnection(name="u", protocol="ucp", host="127.0.0.1", port=peer.port, username="kannel", password="secret", **connection)
    return peer, await UcpSession.open(conn, "session", on_deliver), delivered


async def test_login_is_kannels_ot_60_and_a_nack_refuses():
    peer, session, _ = await opened()
    assert peer.received[0] == b"\x0200/00053/O/60/kannel/6/5/1/736563726574//0100//////50\x03"  # Kannel's, byte for byte
    await session.close()
    await peer.stop()
    peer = await ScriptedSmsc(lambda raw: ucp.encode_frame(ucp.nack(ucp.decode_frame(raw), "07"))).start()
    conn = UcpConnection(name="u", protocol="ucp", host="127.0.0.1", port=peer.port, username="weni", password="bad")
    with pytest.raises(LoginRefused, match=r"ucp_07 \(authentication failure\)"):
        await UcpSession.open(conn, "session")
    await peer.stop()


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        # the SMSC's keep-alive is answered
        (ucp.encode_frame(ucp.alert(5, "0234765439845", "0139")), "05/00019/R/31/A//"),
        # an operation we do not support: NACK 03
        (ucp.encode_frame(ucp.Frame(6, "O", 2, ("1", "2"))), "06/00022/R/02/N/03//"),
        # a bad checksum: NACK 01; a bad LEN: NACK 02
        (b"\x0207/00025/O/31/123/0539/00\x03", "07/00022/R/31/N/01//"),
        (b"\x0208/00099/O/31/123/0539/8B\x03", "08/00022/R/31/N/02//"),
        # an OT 52 goes to the connector's handler, whose answer goes back (here: ACK)
        (ucp.encode_frame(ucp.mo(9, "1234", "250788", "120396111055", ucp.message_fields("hi")[0])), "09/00020/R/52/A///"),
    ],
)  # fmt: skip
async def test_answers_to_the_smscs_frames(sent, answer):
    peer, session, delivered = await opened()
    peer.send(sent)
    assert await peer.wait_for(lambda: len(peer.received) == 2)
    assert peer.received[1][1:-3].decode() == answer  # the checksum is checked by the codec's tests
    ucp.decode_frame(peer.received[1])
    assert session.is_open and len(delivered) == (1 if b"/O/52/" in sent else 0)
    await session.close()
    await peer.stop()


async def test_keepalive_when_idle_and_a_silent_smsc_closes_the_session(monkeypatch):
    monkeypatch.setattr("services.smsc.session.KEEPALIVE_ANSWER_MIN_S", 0.5)
    answered = True

    def answer(raw):
        frame = ucp.decode_frame(raw)
        if frame.ot == ucp.OT_ALERT and not answered:
            return None
        return ucp.encode_frame(ucp.ack(frame))

    peer, session, _ = await opened(answer, keepalive_s=0.2)
    assert await peer.wait_for(lambda: len(peer.received) >= 3, 3)
    assert [f.ot for f in frames(peer)][1:3] == [31, 31] and frames(peer)[1].fields == ("kannel", "0539")
    answered = False
    reason = await asyncio.wait_for(asyncio.shield(session.closed), 5)
    assert reason == "keep-alive unanswered"
    await peer.stop()


async def test_trns_are_never_reused_while_outstanding():
    peer, session, _ = await opened(lambda raw: login_ok(raw), window=3, submit_timeout_s=30)
    part = ("250788123123", "1234", ucp.message_fields("hi")[0], 3)
    submits = [asyncio.ensure_future(session.submit(part)) for _ in range(5)]
    assert await peer.wait_for(lambda: len(peer.received) == 4)
    await asyncio.sleep(0.1)
    outstanding = [f.trn for f in frames(peer)[1:]]
    assert outstanding == [1, 2, 3] and session.in_flight == 3  # the window holds the other two
    peer.send(ucp.encode_frame(ucp.ack(frames(peer)[2], sm="250788123123:011226212051")))
    assert (await submits[1]).fields[0] == "A"
    assert await peer.wait_for(lambda: len(peer.received) == 5)
    assert frames(peer)[4].trn == 4  # the next free one, not 2 again
    await session.close()
    for task in submits:
        task.cancel()
    await peer.stop()
