"""`switchboard watch`: a private tail of sms.status, filtered by channel and status."""

from __future__ import annotations

import asyncio
import signal
import uuid

from services.core.models import StatusError, StatusUpdate
from tests.tools.procs import json_lines, read_line, run_cli, start_cli, stop


async def test_watch_prints_only_the_chosen_channel_and_status(publisher):
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    proc = await start_cli("watch", "--channel", mine, "--status", "failed", "--json", "--count", "2")
    try:
        ready = await read_line(proc.stderr)
        assert ready.startswith("watching ") and f"status.failed.{mine}" in ready
        failure = StatusError(code="response_status", message="HTTP 401")
        await publisher.publish_status(StatusUpdate(id=1, channel_uuid=mine, status="wired"))
        await publisher.publish_status(StatusUpdate(id=2, channel_uuid=other, status="failed", error=failure))
        await publisher.publish_status(StatusUpdate(id=3, channel_uuid=mine, status="failed", error=failure))
        await publisher.publish_status(StatusUpdate(id=4, channel_uuid=mine, status="failed", error=failure))
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        await stop(proc)
    assert proc.returncode == 0
    statuses = json_lines(out.decode())
    assert [(s["id"], s["channel_uuid"], s["status"]) for s in statuses] == [(3, mine, "failed"), (4, mine, "failed")]
    assert statuses[0]["error"] == {"code": "response_status", "message": "HTTP 401", "retry_in_ms": None}


async def test_watch_prints_readable_lines_and_stops_with_exit_0_on_ctrl_c(publisher):
    channel_uuid = str(uuid.uuid4())
    proc = await start_cli("watch", "--channel", channel_uuid)
    try:
        await read_line(proc.stderr)
        await publisher.publish_status(StatusUpdate(id=11, channel_uuid=channel_uuid, status="delivered", external_id="X9"))
        line = await read_line(proc.stdout)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        await stop(proc)
    assert proc.returncode == 0
    assert "delivered" in line and "id=11" in line and "external_id=X9" in line and channel_uuid in line


async def test_watch_refuses_an_unknown_status():
    code, _, err = await run_cli("watch", "--status", "lost")
    assert code == 2
    assert "unknown status 'lost'" in err
