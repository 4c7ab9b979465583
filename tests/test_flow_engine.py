"""examples/flow_engine.py, the FastStream flow engine: an MO injected at the SMSC simulator
comes back to the phone as a reply, through the real broker, router, SMPP connector and
simulator, and the reply's statuses reach the flow engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.dashboard.pipeline import CHANNEL, demo_pipeline
from tests.helpers import Tap


async def test_an_mo_in_gives_a_reply_out(amqp, settings, tmp_path: Path):
    statuses = await Tap.open(amqp, settings, "sms.status", f"status.*.{CHANNEL}")
    outbound = await Tap.open(amqp, settings, "sms.outbound", f"send.{CHANNEL}")
    try:
        async with demo_pipeline(tmp_path / "logs", dashboard=False, flow_engine=True) as pipeline:
            await pipeline.wait_bound()
            await pipeline.inject_mo("+250788123456", "hello flow")
            requests = await outbound.wait(1, timeout=20, where=lambda m: m.body.get("text") == "You said: hello flow")
            reply = requests[0].body
            assert reply["to"] == "tel:+250788123456" and str(reply["id"]).startswith("reply-")
            # the phone got it from the SMSC
            for _ in range(100):
                got = [m for m in await pipeline.sent_to_phones() if m.get("text") == "You said: hello flow"]
                if got:
                    break
                await asyncio.sleep(0.2)
            assert got and got[0]["destination"] == "250788123456"
            await statuses.wait(1, timeout=20, where=lambda m: m.body["id"] == reply["id"] and m.body["status"] == "delivered")
            # ... and the flow engine saw the statuses on status.updates
            log = pipeline.logs / "flow-engine.log"
            for _ in range(50):
                if f"status {reply['id']} delivered" in log.read_text():
                    break
                await asyncio.sleep(0.2)
            assert f"status {reply['id']} delivered" in log.read_text()
    finally:
        await statuses.close()
        await outbound.close()


def test_demo_mo_says_what_is_wrong_when_the_simulator_is_not_there(capsys):
    from services.tools.demo_mo import main
    from tests.tools.procs import free_port

    assert main(["--control", f"http://127.0.0.1:{free_port()}", "--text", "hi"]) == 1
    assert "is `make run` going?" in capsys.readouterr().err
