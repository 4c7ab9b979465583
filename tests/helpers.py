"""Test helpers: taps on exchanges that validate every body against `schemas/`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import orjson

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


async def read_http_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """One HTTP/1.1 request off a keep-alive connection, for the mock servers of the tests:
    (method, target, headers with lower-case names, body). IncompleteReadError at the end."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, target, headers, body


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_for(exchange: str, routing_key: str) -> str | None:
    base = exchange
    if base == "sms.status":
        return "status_update"
    if base == "sms.logs":
        return "channel_log"
    if base == "sms.inbound":
        return "channel_event" if routing_key.startswith("event.") else "inbound_message"
    if base in ("sms.outbound", "sms.transport", "sms.retry"):
        return "send_request"
    if base == "sms.health":
        return "heartbeat"
    return None  # sms.dead carries whatever was poison


def assert_valid(body: bytes | dict, schema: str) -> dict:
    data = orjson.loads(body) if isinstance(body, bytes | str) else body
    errors = sorted(validator(schema).iter_errors(data), key=lambda e: e.path)
    assert not errors, f"{schema}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    return data


@dataclass
class Received:
    routing_key: str
    body: dict
    headers: dict
    raw: bytes


@dataclass
class Tap:
    """An exclusive queue bound to an exchange; collects (and schema-checks) what arrives."""

    exchange: str
    messages: list[Received] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, connection, settings, exchange: str, routing_key: str = "#") -> Tap:
        tap = cls(exchange)
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(settings.name(exchange), routing_key=routing_key)
        tap._channel = channel

        async def on_message(message):
            async with message.process():
                schema = schema_for(exchange, message.routing_key or "")
                try:
                    body = orjson.loads(message.body)
                except orjson.JSONDecodeError:
                    body = {"_raw": message.body.decode("utf-8", "replace")}
                if schema:
                    try:
                        assert_valid(body, schema)
                    except AssertionError as exc:
                        tap.invalid.append(f"{message.routing_key}: {exc}")
                tap.messages.append(Received(message.routing_key, body, dict(message.headers or {}), message.body))
                tap._event.set()

        await queue.consume(on_message)
        return tap

    async def wait(self, count: int = 1, timeout: float = 10.0, where=None) -> list[Received]:
        """Wait until `count` matching messages arrived; fail the test on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert not self.invalid, f"bodies that break their schema: {self.invalid}"
            found = [m for m in self.messages if where is None or where(m)]
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} messages on {self.exchange}, got {len(found)}: {[m.body for m in self.messages][:5]}"
                )
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        await self._channel.close()


# ---------------------------------------------------------------------------- SMSC connector tests


async def taps(amqp, settings, *exchanges: str) -> list[Tap]:
    """One Tap per exchange on what a connector publishes (`sms.retry`: the first delay)."""
    keys = {"sms.status": "status.*.", "sms.logs": "log.", "sms.inbound": "msg."}
    out = []
    for exchange in exchanges:
        key = str(settings.retry_delays_ms[0]) if exchange == "sms.retry" else keys[exchange] + "#"
        out.append(await Tap.open(amqp, settings, exchange, key))
    return out


def of(status: str, channel: str | None = None):
    """A `where` for StatusUpdates with this status (and channel)."""
    return lambda m: m.body.get("status") == status and (channel is None or m.body["channel_uuid"] == channel)


async def queue_depth(amqp, settings, queue: str) -> int:
    channel = await amqp.channel()
    try:
        declared = await channel.declare_queue(settings.name(queue), passive=True)
        return declared.declaration_result.message_count
    finally:
        await channel.close()


class FailingPublisher:
    """A broker that takes nothing: every publish raises."""

    async def publish(self, *args, **kwargs):
        raise ConnectionError("broker unreachable")

    async def publish_status(self, *args, **kwargs):
        raise ConnectionError("broker unreachable")
