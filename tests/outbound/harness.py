"""A courier-style table harness for HTTP send adapters, against the real broker.

Each `SendCase` is a channel, a SendRequest, what the provider answers and what must happen:
the requests the provider sees (method, path, query, headers, body) and the statuses that
come out on `sms.status`. `run_send_cases` runs a whole table at once through one in-process
sender (the cases are independent channels), against `MockProvider`, a real HTTP/1.1 server
on 127.0.0.1, and returns what each case produced; `check_case` compares. The REST adapters'
tables use the same pieces with their own adapters and channels.

In channel configs, `{provider}` stands for the case's base URL on the mock provider and
`{refused}` for a 127.0.0.1 URL where nothing listens.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.outbound.sender import serve_adapters
from tests.helpers import Received, Tap, read_http_request

FINAL = ("wired", "failed")


# --------------------------------------------------------------------------- the provider


@dataclass
class Reply:
    """One scripted provider answer; `delay` seconds of silence first (a timeout when longer
    than the sender's). The last reply of a script repeats."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str  # without the case prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes


class MockProvider:
    """A small keep-alive HTTP/1.1 server: routes by path prefix, records every request."""

    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.requests: dict[str, list[Recorded]] = {}
        self.on_request: Callable[[str, Recorded], None] | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> MockProvider:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    def route(self, prefix: str, replies: Sequence[Reply]) -> str:
        """Serve `replies` under `/prefix`; returns that base URL."""
        self.routes[prefix] = list(replies) or [Reply()]
        self.requests[prefix] = []
        return f"http://127.0.0.1:{self.port}/{prefix}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                method, target, headers, body = await read_http_request(reader)
                reply = self._record(method, target, headers, body)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                phrase = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "Status"
                writer.write(
                    f"HTTP/1.1 {reply.status} {phrase}\r\nContent-Length: {len(payload)}\r\n{extra}\r\n".encode() + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:  # the server is closing with a reply still delayed
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _record(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        recorded = Recorded(method, "/" + rest, parse_qs(parts.query, keep_blank_values=True), headers, body)
        script = self.routes.get(prefix)
        if script is None:
            return Reply(404, "no such route")
        seen = self.requests[prefix]
        seen.append(recorded)
        if self.on_request is not None:
            self.on_request(prefix, recorded)
        return script[min(len(seen), len(script)) - 1]


def refused_url() -> str:
    """A 127.0.0.1 URL where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- cases


@dataclass
class ExpectedRequest:
    """What the provider must see; fields left None are not checked. `headers` is a subset
    (names case-insensitive); `query` and `form` are compared whole; `body` byte for byte."""

    method: str | None = None
    path: str | None = None
    query: dict[str, list[str]] | None = None
    headers: dict[str, str] | None = None
    body: bytes | str | None = None
    form: dict[str, list[str]] | None = None
    json: Any = None


@dataclass
class SendCase:
    label: str
    channel: dict[str, Any]  # channel fields (type, config, ...) without uuid
    request: dict[str, Any]  # SendRequest fields; channel_uuid is filled in
    responses: list[Reply] = field(default_factory=lambda: [Reply(200, "ok")])
    expected_requests: list[ExpectedRequest] | None = None
    expected_statuses: list[tuple[str, str | None]] = field(default_factory=lambda: [("wired", None)])
    expected_external_id: str | None = None
    secrets: Sequence[str] = ()  # must appear in no ChannelLog


@dataclass
class CaseResult:
    channel_uuid: str
    requests: list[Recorded]
    statuses: list[Received]
    logs: list[Received]


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


def build_channels(cases: Sequence[SendCase], provider: MockProvider) -> tuple[list[dict], dict[str, str]]:
    """The channels file entries of `cases` (one fresh uuid each) and label -> uuid."""
    channels, uuids = [], {}
    refused = refused_url()
    for index, case in enumerate(cases):
        base = provider.route(f"c{index}", case.responses)
        channel_uuid = str(uuid.uuid4())
        entry = _substitute(copy.deepcopy(case.channel), {"provider": base, "refused": refused})
        channels.append({"uuid": channel_uuid, "name": case.label, **entry})
        uuids[case.label] = channel_uuid
    return channels, uuids


def settings_for_cases(retry_delays_ms: Sequence[int] = (300, 600), **overrides) -> Settings:
    """Settings from the test environment with short retry delays."""
    return Settings(retry_delays_ms=list(retry_delays_ms), **overrides)


@asynccontextmanager
async def running_sender(
    channels: list[dict], adapters: Sequence, settings: Settings | None = None, **options
) -> AsyncIterator[Runtime]:
    """An in-process sender for `channels` (channels-file entries) until the block ends."""
    registry = parse_channels(yaml.safe_dump({"channels": channels}), "cases.yaml")
    runtime = Runtime("sender-test", settings or settings_for_cases(), registry)
    await runtime.connect()
    try:
        await serve_adapters(runtime, adapters, **options)
        yield runtime
    finally:
        await runtime.close()


async def run_send_cases(
    cases: Sequence[SendCase],
    adapters: Sequence,
    transport: str,
    *,
    settings: Settings | None = None,
    timeout: float = 1.0,
    wait: float = 20.0,
) -> dict[str, CaseResult]:
    """Run every case at once through an in-process sender; label -> what it produced."""
    labels = [c.label for c in cases]
    settings = settings or settings_for_cases()
    assert len(set(labels)) == len(labels), "case labels must be unique"
    provider = await MockProvider().start()
    channels, uuids = build_channels(cases, provider)
    try:
        async with running_sender(channels, adapters, settings, timeout=timeout) as runtime:
            status_tap = await Tap.open(runtime.connection, settings, "sms.status", "status.#")
            log_tap = await Tap.open(runtime.connection, settings, "sms.logs", "log.#")
            try:
                for case in cases:
                    body = {**case.request, "channel_uuid": uuids[case.label]}
                    await runtime.publisher.publish("sms.transport", transport, orjson.dumps(body))
                await _wait_final(status_tap, list(uuids.values()), wait)
                await asyncio.sleep(0.3)  # anything published after the final status would show up now
                await _wait_logs(status_tap, log_tap, list(uuids.values()), 5.0)
                assert not status_tap.invalid and not log_tap.invalid, status_tap.invalid + log_tap.invalid
            finally:
                await status_tap.close()
                await log_tap.close()
    finally:
        await provider.close()
    return {
        case.label: CaseResult(
            uuids[case.label],
            list(provider.requests[f"c{index}"]),
            [m for m in status_tap.messages if m.body["channel_uuid"] == uuids[case.label]],
            [m for m in log_tap.messages if m.body["channel_uuid"] == uuids[case.label]],
        )
        for index, case in enumerate(cases)
    }


async def _wait_final(tap: Tap, channel_uuids: list[str], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(channel_uuids)
    while pending and loop.time() < deadline:
        pending -= {m.body["channel_uuid"] for m in tap.messages if m.body["status"] in FINAL}
        await asyncio.sleep(0.05)


async def _wait_logs(status_tap: Tap, log_tap: Tap, channel_uuids: list[str], timeout: float) -> None:
    """Channel logs travel apart from statuses (batched, unconfirmed): wait until every case
    has as many as it has statuses, or `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        statuses = [m.body["channel_uuid"] for m in status_tap.messages]
        logs = [m.body["channel_uuid"] for m in log_tap.messages]
        if all(logs.count(u) >= statuses.count(u) for u in channel_uuids):
            return
        await asyncio.sleep(0.05)


def check_case(case: SendCase, result: CaseResult) -> None:
    """Assert that `result` is what `case` expects; the message names the case."""
    label = case.label
    seen = [(m.body["status"], (m.body.get("error") or {}).get("code")) for m in result.statuses]
    assert seen == list(case.expected_statuses), f"{label}: statuses {seen}, expected {case.expected_statuses}"
    for number, message in enumerate(result.statuses, start=1):
        assert message.body["attempt"] == number, f"{label}: status {number} has attempt {message.body['attempt']}"
        assert message.body["id"] == case.request["id"], f"{label}: status id {message.body['id']!r}"
        if message.body["status"] == "errored":
            assert message.body["error"]["retry_in_ms"] > 0, f"{label}: errored without retry_in_ms"
    if case.expected_statuses and case.expected_statuses[-1][0] == "wired":
        assert result.statuses[-1].body["external_id"] == case.expected_external_id, f"{label}: external_id"
    assert len(result.logs) == len(result.statuses), f"{label}: {len(result.logs)} channel logs for {len(result.statuses)} sends"
    for entry in result.logs:
        assert entry.body["type"] == "msg_send" and entry.body["msg_id"] == case.request["id"], f"{label}: log {entry.body}"
        for secret in case.secrets:
            assert secret not in entry.raw.decode(), f"{label}: secret {secret!r} in a channel log"
    if case.expected_requests is not None:
        assert len(result.requests) == len(case.expected_requests), (
            f"{label}: provider saw {len(result.requests)} requests, expected {len(case.expected_requests)}: "
            f"{[(r.method, r.path, r.body) for r in result.requests]}"
        )
        for number, (expected, got) in enumerate(zip(case.expected_requests, result.requests, strict=True), start=1):
            _check_request(f"{label}: request {number}", expected, got)


def _check_request(where: str, expected: ExpectedRequest, got: Recorded) -> None:
    if expected.method is not None:
        assert got.method == expected.method, f"{where}: method {got.method}"
    if expected.path is not None:
        assert got.path == expected.path, f"{where}: path {got.path}"
    if expected.query is not None:
        assert got.query == expected.query, f"{where}: query {got.query}"
    for name, value in (expected.headers or {}).items():
        assert got.headers.get(name.lower()) == value, f"{where}: header {name}: {got.headers.get(name.lower())!r}"
    if expected.body is not None:
        want = expected.body.encode() if isinstance(expected.body, str) else expected.body
        assert got.body == want, f"{where}: body {got.body!r}\n   expected {want!r}"
    if expected.form is not None:
        assert parse_qs(got.body.decode(), keep_blank_values=True) == expected.form, f"{where}: form {got.body!r}"
    if expected.json is not None:
        assert orjson.loads(got.body) == expected.json, f"{where}: json {got.body!r}"
