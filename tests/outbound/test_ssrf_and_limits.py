"""Issue 13, item 5: the SSRF guard's vetted address is the one connected to, and a
provider's answer is read up to 1 MiB only (`errored` `response_too_large` past that).

Pinning is shown with a host name that does not resolve at all for anyone but the guard
(`provider.invalid`): a request that connected by name would fail to resolve it. Over TLS the
name must still be the SNI and the name the certificate is checked against (a trustme CA).
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import ssl

import pytest
import trustme

from services.core.channels import parse_channels
from services.core.models import SendRequest
from services.outbound.sender import RESPONSE_LIMIT, HttpPool, SsrfGuard, send_parts
from services.providers.adapter import SendContext
from services.providers.external import ExternalAdapter

from .harness import Reply, SendCase, check_case, run_send_cases

NAME = "provider.invalid"


class VettedAsLoopback(SsrfGuard):
    """The guard in strict mode, with a resolver that says `provider.invalid` is 127.0.0.1 and
    that address counted as public: what a DNS-rebinding host answers the guard."""

    def __init__(self):
        super().__init__(allow_private=False)
        self.lookups = 0

    async def _resolve(self, host, port):
        self.lookups += 1
        return ["127.0.0.1"] if host == NAME else await super()._resolve(host, port)

    def _allowed(self, address):
        return address == ipaddress.ip_address("127.0.0.1") or super()._allowed(address)


class Provider:
    """A one-request-per-connection HTTP/1.1 server that records the Host header and SNI."""

    def __init__(self, body: bytes = b"ok", headers: bytes = b"", tls: ssl.SSLContext | None = None, chunks: int = 0):
        self.body, self.headers, self.tls, self.chunks = body, headers, tls, chunks
        self.hosts: list[str] = []
        self.sni: list[str | None] = []
        self.written = 0
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"host:"):
                    self.hosts.append(line[5:].strip().decode())
            if self.chunks:  # an endless-looking chunked answer: count what gets out before the client hangs up
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                piece = b"x" * 65536
                for _ in range(self.chunks):
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    self.written += len(piece)
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(self.body), self.headers, self.body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        self.server.close()


def channel(url: str):
    doc = {"channels": [{"uuid": "8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11", "type": "external", "config": {"send_url": url}}]}
    import yaml

    return parse_channels(yaml.safe_dump(doc)).channels["8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11"]


def request() -> SendRequest:
    return SendRequest(id=7, channel_uuid="8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11", to="+250788123123", text="hi")


async def send(url: str, pool: HttpPool, guard: SsrfGuard, settings):
    ch = channel(url)
    return await send_parts(ExternalAdapter(), ch, request(), SendContext(settings), pool, guard)


async def test_the_request_connects_to_the_vetted_address_with_the_name_as_host(settings):
    provider = Provider()
    port = await provider.start()
    pool, guard = HttpPool(timeout=5, shards=1), VettedAsLoopback()
    try:
        result = await send(f"http://{NAME}:{port}/send", pool, guard, settings)
    finally:
        await pool.aclose()
        await provider.close()
    assert result.outcome.status == "wired", result.errors
    assert provider.hosts == [f"{NAME}:{port}"]
    assert guard.lookups == 1
    assert result.http[0].url == f"http://{NAME}:{port}/send"  # the channel log names the URL as configured


async def test_over_tls_the_name_is_the_sni_and_the_certificate_name(settings):
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    provider = Provider(tls=server_tls)
    port = await provider.start()
    pool = HttpPool(timeout=5, shards=1, verify=client_tls)
    try:
        result = await send(f"https://{NAME}:{port}/send", pool, VettedAsLoopback(), settings)
    finally:
        await pool.aclose()
        await provider.close()
    assert result.outcome.status == "wired", result.errors
    assert provider.sni == [NAME] and provider.hosts == [f"{NAME}:{port}"]


async def test_a_certificate_for_another_name_is_still_refused(settings):
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("someone-else.invalid").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    provider = Provider(tls=server_tls)
    port = await provider.start()
    pool = HttpPool(timeout=5, shards=1, verify=client_tls)
    try:
        result = await send(f"https://{NAME}:{port}/send", pool, VettedAsLoopback(), settings)
    finally:
        await pool.aclose()
        await provider.close()
    assert (result.outcome.status, result.outcome.code) == ("errored", "connection_failed")
    assert "CERTIFICATE_VERIFY_FAILED" in result.outcome.message or "certificate" in result.outcome.message.lower()


def test_nothing_is_pinned_when_private_addresses_are_allowed():
    assert SsrfGuard(allow_private=True).pinned(f"http://{NAME}/x") is None


@pytest.mark.parametrize(
    ("body", "headers", "chunks", "status", "code"),
    [
        (b"0" * RESPONSE_LIMIT, b"", 0, "wired", None),
        (b"0" * (RESPONSE_LIMIT + 1), b"", 0, "errored", "response_too_large"),  # declared too big: not read
        (None, b"", 800, "errored", "response_too_large"),  # 50 MiB chunked, no length
        (gzip.compress(b"0" * (8 * RESPONSE_LIMIT)), b"Content-Encoding: gzip\r\n", 0, "errored", "response_too_large"),
    ],
    ids=["exactly 1 MiB", "1 MiB + 1 declared", "50 MiB chunked", "8 MiB gzip bomb"],
)
async def test_answers_are_capped_at_1_mib(settings, body, headers, chunks, status, code):
    provider = Provider(body or b"", headers, chunks=chunks)
    port = await provider.start()
    pool = HttpPool(timeout=10, shards=1)
    try:
        result = await send(f"http://127.0.0.1:{port}/send", pool, SsrfGuard(allow_private=True), settings)
    finally:
        await pool.aclose()
        await provider.close()
    assert (result.outcome.status, result.outcome.code) == (status, code), result.errors
    if chunks:  # the client hung up early: far less than the 50 MiB was ever sent
        assert provider.written < 16 * RESPONSE_LIMIT, provider.written


async def test_a_too_large_answer_is_errored_and_retried_through_the_broker(amqp):
    """Through the real broker and the in-process sender: errored, retried, then wired."""
    case = SendCase(
        "2 MiB answer, then ok", {"type": "external", "config": {"send_url": "{provider}/send"}},
        {"id": 991, "to": "+250788123123", "text": "hi"},
        responses=[Reply(200, b"x" * (2 * RESPONSE_LIMIT)), Reply(200, "ok")],
        expected_statuses=[("errored", "response_too_large"), ("wired", None)],
    )  # fmt: skip
    results = await run_send_cases([case], [ExternalAdapter()], "external")
    check_case(case, results[case.label])
