"""The plain functions under the sender and the external adapter, without a broker."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import httpx
import pytest

from services.core.channels import ExternalChannel
from services.core.models import SendRequest
from services.core.ratelimit import TokenBucket
from services.core.settings import Settings
from services.outbound.sender import SsrfGuard, decide, is_public
from services.providers.adapter import Outcome
from services.providers.external import ExternalAdapter, national_number, template_values
from services.providers.templates import escape, quick_replies, render
from services.providers.text import attachment_url, smart_encode, split_text, text_with_attachments

UUID = "a86f686f-9168-4dd9-a03e-77f11b265b56"


def channel(**config) -> ExternalChannel:
    return ExternalChannel(uuid=UUID, type="external", address="+2020", country="RW",
                           config={"send_url": "http://example.com/send", **config})  # fmt: skip


def send(**fields) -> SendRequest:
    return SendRequest(**{"id": 5, "channel_uuid": UUID, "to": "+250788383383", "text": "hi", **fields})


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("short", 160, ["short"]),
        ("  kept as is  ", 160, ["  kept as is  "]),
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),
        ("one two three", 7, ["one two", "three"]),
        ("ééééé ééé", 10, ["ééééé", "ééé"]),
        ("aé", 2, ["a", "é"]),
        ("😀😀", 3, ["😀", "😀"]),
        ("word     word", 5, ["word", "word"]),
    ],
)
def test_split_text(text, limit, parts):
    assert split_text(text, limit) == parts
    assert all(len(p.encode()) <= max(limit, 4) for p in parts)


def test_attachments_and_smart_encoding():
    assert attachment_url("image/jpeg:https://x/a.jpg") == "https://x/a.jpg"
    assert attachment_url("https://x/a.jpg") == "//x/a.jpg"  # courier: always the part after the first colon
    assert attachment_url("no-colon") == "no-colon"
    assert text_with_attachments("hi", ["a:b", "c:d"]) == "hi\nb\nd"
    assert smart_encode("“Quote” — it’s\xa0fine…") == "\"Quote\" - it's fine..."
    assert smart_encode("Ação") == "Acao"
    assert smart_encode("Ação ☺") == "Ação ☺"  # not GSM even after substitution: unchanged


def test_escaping_per_place():
    assert escape("a b&c/é", "url") == "a+b%26c%2F%C3%A9"
    assert escape(12, "json") == "12" and escape("12", "json") == '"12"' and escape(True, "json") == '"True"'
    assert escape(None, "json") == '""'
    assert escape("<a href='x'>&\n", "xml") == "&lt;a href=&#39;x&#39;&gt;&amp;&#xA;"
    assert escape("\x00", "xml") == "\ufffd"
    assert escape("<raw> & ok", "raw") == "<raw> & ok"
    assert quick_replies([], "json") == "[]" and quick_replies(["a b"], "url") == "&quick_reply=a+b"
    assert quick_replies(["<x>"], "xml") == "<item>&lt;x&gt;</item>"


def test_render_is_one_pass_and_strips_quotes():
    values = {"text": "{{to}}", "to": "+1"}
    assert render("{{text}}|{{to}}", values, "raw") == "{{to}}|+1"
    assert render("\"{{to}}\" '{{to}}' {{nope}} \"{{nope}}\"", values, "json") == '"+1" "+1" {{nope}} "{{nope}}"'


def test_template_values_and_national_numbers():
    values = template_values(channel(), send(to="tel:+250788383383"))
    assert values["to"] == "+250788383383" and values["to_no_plus"] == "250788383383"
    assert values["channel"] == UUID and values["from_no_plus"] == "2020" and values["uuid"] == ""
    national = template_values(channel(use_national=True), send())
    assert national["to"] == national["to_no_plus"] == "788383383"
    assert template_values(channel(use_national=True), send(to="ext:abc"))["to"] == "abc"
    assert national_number("garbage", "RW") == "garbage"


def test_adapter_build_defaults_and_interpret():
    (req,) = ExternalAdapter().build(channel(method="get"), send(), None)
    assert req.method == "GET" and req.content is None
    (req,) = ExternalAdapter().build(channel(content_type="text/plain", body="{{text}} {{quick_replies}}"),
                                     send(quick_replies=["a b"]), None)  # fmt: skip
    assert req.headers == {"Content-Type": "text/plain"} and req.content == b"hi &quick_reply=a+b"
    adapter, ch = ExternalAdapter(), channel(mt_response_check="OK")
    assert adapter.interpret(ch, httpx.Response(200, text="all OK")).status == "wired"
    assert adapter.interpret(ch, httpx.Response(200, text="nope")).code == "response_content"
    assert adapter.interpret(ch, httpx.Response(429)).code == "connection_throttled"
    assert adapter.interpret(ch, httpx.Response(503)).code == "connection_failed"
    assert adapter.interpret(ch, httpx.Response(404)).code == "response_status"


def test_decide_counts_attempts_and_runs_out_of_delays():
    settings = Settings(retry_delays_ms=[10, 20])
    errored = Outcome("errored", code="connection_failed", message="HTTP 500")
    first = decide(errored, send(), "external", settings)
    assert (first.status.status, first.status.attempt, first.retry_delay_ms) == ("errored", 1, 10)
    assert first.status.error.retry_in_ms == 10
    last = decide(errored, send(attempt=2), "external", settings)
    assert (last.status.status, last.status.attempt, last.retry_delay_ms) == ("failed", 3, None)
    assert last.status.error.code == "connection_failed"
    wired = decide(Outcome("wired", external_id="X1"), send(), "external", settings)
    assert (wired.status.status, wired.status.external_id, wired.status.error) == ("wired", "X1", None)


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.1", False),
     ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False), ("fe80::1", False),
     ("::ffff:127.0.0.1", False), ("224.0.0.1", False), ("fd00::1", False)],
)  # fmt: skip
def test_is_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


async def test_ssrf_guard():
    strict, lenient = SsrfGuard(allow_private=False), SsrfGuard(allow_private=True)
    assert "non-public" in await strict.refusal("http://localhost:8080/x")
    assert "non-public" in await strict.refusal("http://127.0.0.1/x")
    assert await strict.refusal("https://8.8.8.8/x") is None
    assert "scheme" in await strict.refusal("file:///etc/passwd")
    assert "scheme" in await lenient.refusal("gopher://127.0.0.1/")
    assert await lenient.refusal("http://127.0.0.1:9/x") is None
    with pytest.raises(OSError):
        await strict.refusal("http://no-such-host.invalid/")


async def test_token_bucket_holds_the_rate():
    bucket = TokenBucket(rate=20, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(bucket.take() for _ in range(6)))
    assert time.monotonic() - started >= 5 / 20 * 0.9

