"""Our CIMD2 codec as a client of Kannel's ``test_cimd2`` (Debian ``kannel-extras``), an
independent CIMD2 server: login good and bad, submit (053 with 021 and 060), errors 300 and
301, alive, an unknown operation (98) and logout. The connector's own session tests use the
same server through :func:`tests.peers.kannel.start_test_cimd2`."""

from __future__ import annotations

import contextlib

import pytest

from services.protocols import cimd2
from services.protocols.cimd2 import Packet
from tests.framed_client import FramedClient

from .kannel import require_test_cimd2, start_test_cimd2


@pytest.fixture
async def server():
    require_test_cimd2()
    proc, port = await start_test_cimd2("foo", "bar")
    conn = await FramedClient.connect(port, cimd2.packet_reader(), cimd2.encode_packet, lambda p: None)
    yield conn
    await conn.close()
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def ask(conn: FramedClient, packet: Packet) -> Packet:
    conn.send(packet)
    return await conn.expect(lambda p: p.number == packet.number)


async def test_bad_login_is_refused(server):
    resp = await ask(server, cimd2.login(1, "foo", "wrong"))
    assert (resp.opcode, resp.error_code) == (51, "100")


async def test_session(server):
    numbers = cimd2.PacketNumbers()
    assert (await ask(server, cimd2.login(numbers.next(), "foo", "bar"))).error is None
    for text in ("Hello €[]{}", "Привет 😀", "x" * 170):
        for part in cimd2.message_params(text, ref=5):
            resp = await ask(server, cimd2.submit(numbers.next(), "+250788123456", "Switchboard", part,
                                                  status_report=14))
            assert (resp.opcode, resp.error, resp.get(21)) == (53, None, "250788123456")
            assert cimd2.parse_timestamp(resp.get(60)) is not None
    no_dest = await ask(server, Packet(3, numbers.next(), ((33, "x"),)))
    assert no_dest.error_code == "300"
    two = await ask(server, Packet(3, numbers.next(), ((21, "1"), (21, "2"), (33, "x"))))
    assert two.error_code == "301"
    assert (await ask(server, cimd2.alive(numbers.next()))).opcode == 90
    unknown = await ask(server, Packet(77, numbers.next()))
    assert (unknown.opcode, unknown.error_code) == (98, "1")
    assert (await ask(server, cimd2.logout(numbers.next()))).opcode == 52
    assert server.errors == []  # every packet test_cimd2 wrote decoded, checksums included
