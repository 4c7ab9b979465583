"""TLS client contexts for SMSC connections, against the simulator wrapped in TLS with a test CA."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from services.core.tls import TlsConfigError, client_context, describe
from services.smsc_simulator import SmscSimulator
from tests.tls_certs import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls"))


async def _handshake(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host)
    writer.close()


async def test_the_test_ca_verifies_the_simulator(certs):
    async with SmscSimulator(ssl=certs.server_context()) as sim:
        await _handshake(sim.port, client_context(str(certs.ca)))
        await _handshake(sim.port, client_context(str(certs.ca)), host="localhost")  # SNI and name check


async def test_a_wrong_ca_is_refused_with_a_clear_error(certs):
    async with SmscSimulator(ssl=certs.server_context()) as sim:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            await _handshake(sim.port, client_context(str(certs.other_ca)))
    assert describe(caught.value) == "TLS: certificate verify failed: unable to get local issuer certificate"


async def test_a_name_the_certificate_does_not_carry_is_refused(certs):
    async with SmscSimulator(ssl=certs.server_context()) as sim:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            await _handshake(sim.port, client_context(str(certs.ca)), host="smsc.example.com")
    assert "Hostname mismatch" in describe(caught.value)


async def test_tls_verify_false_accepts_an_unknown_ca(certs):
    async with SmscSimulator(ssl=certs.server_context()) as sim:
        await _handshake(sim.port, client_context(str(certs.other_ca), tls_verify=False))


@pytest.mark.parametrize(
    ("ca", "message"),
    [("/nonexistent/ca.pem", "tls_ca /nonexistent/ca.pem: no such file"), ("README.md", "not a readable PEM CA file")],
)
def test_an_unusable_tls_ca_is_a_clear_error(ca, message):
    with pytest.raises(TlsConfigError, match=message):
        client_context(ca)
