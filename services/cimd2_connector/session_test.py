"""The CIMD2 session's packets against a scripted peer over TCP: login and the window it is
granted, answers to the SMSC's requests (malformed ones included), and a 98 from the SMSC."""

from __future__ import annotations

import asyncio

import pytest

from services.core.channels import Cimd2Connection
from services.protocols import cimd2
from services.smsc.session import LoginRefused
from services.smsc.testkit import ScriptedSmsc

from .session import Cimd2Session


def packets(peer: ScriptedSmsc) -> list[cimd2.Packet]:
    return [cimd2.decode_packet(raw) for raw in peer.received]


def smsc(login_params=(), login_error=None, refuse_window_with=None):
    """Answers a login (granting `login_params`, or refusing), alive and submit."""

    def answer(raw: bytes) -> bytes | None:
        packet = cimd2.decode_packet(raw)
        if packet.opcode == cimd2.OP_LOGIN:
            if refuse_window_with and packet.get(cimd2.P_WINDOW):
                return cimd2.encode_packet(cimd2.response(packet, error=refuse_window_with))
            return cimd2.encode_packet(cimd2.response(packet, login_params, error=login_error))
        if packet.opcode == cimd2.OP_SUBMIT or packet.is_response:
            return None  # the test answers submits itself; our answers need none
        return cimd2.encode_packet(cimd2.response(packet))

    return answer


async def opened(answer, **connection) -> tuple[ScriptedSmsc, Cimd2Session, list]:
    peer = await ScriptedSmsc(answer).start()
    delivered: list = []

    async def on_deliver(packet):
        delivered.append(packet)
        return 0

    conn = Cimd2Connection(name="c", protocol="cimd2", host="127.0.0.1", port=peer.port, username="foo", password="bar",
                           submit_timeout_s=30, **connection)  # fmt: skip
    return peer, await Cimd2Session.open(conn, "session", on_deliver), delivered


@pytest.mark.parametrize(
    ("window", "peer", "logins", "granted"),
    [
        (1, smsc(), [None], 1),  # stop-and-wait: no 019 asked
        (8, smsc(((cimd2.P_WINDOW, "5"),)), ["8"], 5),  # the SMSC grants 5 of the 8 asked
        (8, smsc(), ["8"], 1),  # accepted without naming a size: stop-and-wait
        (8, smsc(refuse_window_with=105), ["8", None], 1),  # windowing disabled: log in again without it
    ],
)  # fmt: skip
async def test_login_and_the_window_it_grants(window, peer, logins, granted):
    server, session, _ = await opened(peer, window=window)
    sent = packets(server)
    assert [p.get(cimd2.P_WINDOW) for p in sent] == logins
    assert [p.number for p in sent] == list(range(1, 2 * len(logins), 2))  # odd packet numbers
    assert session.window.size == granted
    part = ("250788123123", "1234", cimd2.message_params("hi")[0], 14)
    submits = [asyncio.ensure_future(session.submit(part)) for _ in range(granted + 2)]
    assert await server.wait_for(lambda: len(server.received) == len(logins) + granted)
    await asyncio.sleep(0.1)
    assert len(server.received) == len(logins) + granted  # no more than the window outstanding
    first = packets(server)[len(logins)]
    server.send(cimd2.encode_packet(cimd2.response(first, ((21, "250788123123"), (60, "261201212133")))))
    assert (await submits[0]).get(cimd2.P_SCTS) == "261201212133"
    assert await server.wait_for(lambda: len(server.received) == len(logins) + granted + 1)
    await session.close()
    for task in submits:
        task.cancel()
    await server.stop()


async def test_a_refused_login_names_the_error():
    peer = await ScriptedSmsc(smsc(login_error=100)).start()
    conn = Cimd2Connection(name="c", protocol="cimd2", host="127.0.0.1", port=peer.port, username="foo", password="x")
    with pytest.raises(LoginRefused, match=r"cimd2_100 \(invalid login\)"):
        await Cimd2Session.open(conn, "session")
    await peer.stop()


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (cimd2.encode_packet(cimd2.alive(2)), b"\x0290:002\t"),  # alive is answered
        (b"\x0223:004\t021:1234\t060:261201212133\t061:4\t00\x03", b"\x0299:004\t"),  # bad checksum: NACK 99
        (cimd2.encode_packet(cimd2.Packet(25, 6)), b"\x0298:006\t900:1\t901:unexpected operation\t"),
        (b"\x0220:000\t021:1234\t023:447700900123\t060:261201212156\t033:Hi _Oa there\t3B\x03", b"\x0270:000\t"),
    ],
)  # fmt: skip
async def test_answers_to_the_smscs_packets(sent, answer):
    peer, session, delivered = await opened(smsc())
    peer.send(sent)
    assert await peer.wait_for(lambda: len(peer.received) == 2)
    assert peer.received[1][:-3] == answer  # the checksum (2 hex digits) is the codec's business
    cimd2.decode_packet(peer.received[1])
    assert session.is_open and len(delivered) == (1 if sent.startswith(b"\x0220:") else 0)
    await session.close()
    await peer.stop()


async def test_a_general_error_from_the_smsc_closes_the_session():
    peer, session, _ = await opened(smsc())
    peer.send(cimd2.encode_packet(cimd2.general_error(3, 2, "syntax error")))
    reason = await asyncio.wait_for(asyncio.shield(session.closed), 5)
    assert reason == "general error from the SMSC: 900:2 syntax error"
    await peer.stop()
