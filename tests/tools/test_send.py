"""`switchboard send`: what it publishes, what it refuses, and how --wait follows a message."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from services.core.models import StatusError, StatusUpdate
from tests.helpers import Tap
from tests.tools.procs import json_lines, read_line, run_cli, start_cli, stop


@pytest.fixture
async def outbound_tap(amqp, settings):
    channel_uuid = str(uuid.uuid4())
    tap = await Tap.open(amqp, settings, "sms.outbound", f"send.{channel_uuid}")
    yield channel_uuid, tap
    await tap.close()


@pytest.fixture(scope="module", autouse=True)
async def _empty_router_queue(amqp):
    """No router runs here: drop what these tests left in outbound.router for later tests."""
    from services.core.settings import Settings

    yield
    channel = await amqp.channel()
    queue = await channel.get_queue(Settings().name("outbound.router"), ensure=False)
    await queue.purge()
    await channel.close()


async def test_send_publishes_a_schema_valid_request_and_wait_prints_its_statuses(outbound_tap, publisher):
    channel_uuid, tap = outbound_tap
    proc = await start_cli(
        "send", "--channel", channel_uuid, "--to", "+250788123123", "--text", "Love is patient.",
        "--id", "1241244", "--attachment", "image/jpeg:https://example.com/a.jpg",
        "--quick-reply", "Yes", "--quick-reply", "No", "--wait", "--timeout", "20", "--json",
    )
    try:
        [received] = await tap.wait(1, timeout=15)  # Tap checks the body against send_request.json
        body = received.body
        assert received.routing_key == f"send.{channel_uuid}"
        assert body["id"] == 1241244  # digits become a number, as RapidPro's ids
        assert (body["channel_uuid"], body["to"], body["text"]) == (channel_uuid, "+250788123123", "Love is patient.")
        assert body["attachments"] == ["image/jpeg:https://example.com/a.jpg"]
        assert body["quick_replies"] == ["Yes", "No"]
        assert body["uuid"] and body["created_on"]

        # A fake connector: another message's status (ignored), a retry (keeps waiting), then wired.
        await publisher.publish_status(StatusUpdate(id=999, channel_uuid=channel_uuid, status="wired"))
        await publisher.publish_status(
            StatusUpdate(id=1241244, channel_uuid=channel_uuid, status="errored", attempt=1,
                         error=StatusError(code="connection_failed", message="timeout", retry_in_ms=5000))
        )
        await publisher.publish_status(
            StatusUpdate(id=1241244, channel_uuid=channel_uuid, status="wired", external_id="SM1", attempt=2)
        )
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        await stop(proc)
    assert proc.returncode == 0, err.decode()
    statuses = json_lines(out.decode())
    assert [(s["id"], s["status"]) for s in statuses] == [(1241244, "errored"), (1241244, "wired")]
    assert statuses[1]["external_id"] == "SM1"
    assert "published id=1241244" in err.decode()


async def test_wait_exits_1_on_failed_with_a_readable_line(outbound_tap, publisher):
    channel_uuid, tap = outbound_tap
    proc = await start_cli("send", "--channel", channel_uuid, "--to", "tel:+250788123123", "--text", "hi", "--id", "abc-7", "--wait")
    try:
        [received] = await tap.wait(1, timeout=15)
        assert received.body["id"] == "abc-7"
        await publisher.publish_status(
            StatusUpdate(id="abc-7", channel_uuid=channel_uuid, status="failed",
                         error=StatusError(code="channel_not_found", message="no such channel"))
        )
        line = await read_line(proc.stdout)
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        await stop(proc)
    assert proc.returncode == 1
    assert "failed" in line and "id=abc-7" in line and "channel_not_found: no such channel" in line


async def test_wait_exits_3_when_no_verdict_arrives(outbound_tap):
    channel_uuid, tap = outbound_tap
    code, _, err = await run_cli("send", "--channel", channel_uuid, "--to", "+250788123123", "--text", "x", "--wait", "--timeout", "1")
    assert code == 3
    assert "within 1 s" in err
    await tap.wait(1, timeout=5)  # it was published all the same


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--to", "hello", "--text", "x"], "not a number or URN"),
        (["--to", "+12", "--text", "x"], "not a number or URN"),
        (["--to", "tel:12ab", "--text", "x"], "not a phone number"),
        (["--to", "+250788123123", "--text", ""], "text may be empty only when there are attachments"),
    ],
)
async def test_bad_input_exits_2_with_a_reason_and_publishes_nothing(outbound_tap, args, reason):
    channel_uuid, tap = outbound_tap
    code, out, err = await run_cli("send", "--channel", channel_uuid, *args)
    assert code == 2
    assert err.startswith("not sent: ") and reason in err
    assert out == ""
    await asyncio.sleep(0.5)
    assert tap.messages == []


async def test_a_channel_that_is_not_a_uuid_is_refused(outbound_tap):
    code, _, err = await run_cli("send", "--channel", "not-a-uuid", "--to", "+250788123123", "--text", "x")
    assert code == 2
    assert "channel_uuid" in err and "UUID" in err


async def test_an_unreachable_broker_is_one_clear_line(outbound_tap):
    channel_uuid, _ = outbound_tap
    code, _, err = await run_cli(
        "send", "--channel", channel_uuid, "--to", "+250788123123", "--text", "x",
        env={"RABBITMQ_URL": "amqp://guest:secretpw@127.0.0.1:9/"},
    )
    assert code == 1
    assert err.startswith("cannot reach RabbitMQ at amqp://guest:**********@127.0.0.1:9/")
    assert "secretpw" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_status_bodies_round_trip_through_json_lines():
    """--json prints exactly the StatusUpdate body (what a script would parse)."""
    from services.tools.common import json_line

    status = StatusUpdate(id=5, channel_uuid=str(uuid.uuid4()), status="wired")
    assert orjson.loads(json_line(orjson.loads(status.to_bytes()))) == orjson.loads(status.to_bytes())
