"""`switchboard run all`: the service table, skipping what is missing, restarts, a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import orjson

from services.core.channels import parse_channels
from services.supervisor import Service, command_for, plan
from tests.tools.procs import free_port, start_cli, stop

CHANNELS = """\
channels:
  - uuid: 8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11
    type: external
    config: {{send_url: "http://127.0.0.1:{sink}/send", content_type: json}}
  - uuid: 3b9e7c21-0d4f-4e6a-8b5c-6a1d2e3f4a22
    type: smpp
    connection: sim
smpp_connections:
  - {{name: sim, host: 127.0.0.1, port: {smpp}, system_id: sb, password: "s3cr3t-pw", simulator: true}}
  - {{name: real, host: 10.9.9.9, port: 2775, system_id: sb}}
"""


def test_the_service_table_follows_the_channels_file():
    registry = parse_channels(CHANNELS.format(sink=9090, smpp=2775), "channels.yaml")
    services = {s.name: s for s in plan(registry, demo_sink_port=9090)}
    assert list(services) == [
        "inbound", "router", "external", "rest", "dashboard", "smsc-sim.sim", "smpp.sim", "smpp.real", "demo-sink",
    ]
    assert services["smpp.real"].args == ("--connection", "real")
    simulator = services["smsc-sim.sim"]
    assert simulator.args == ("--host", "127.0.0.1", "--port", "2775", "--control-port", "2776", "--system-id", "sb")
    assert dict(simulator.env) == {"SMSC_SIM_PASSWORD": "s3cr3t-pw"}  # not on the command line, where ps shows it
    assert services["demo-sink"].args == ("--port", "9090")
    assert "demo-sink" not in {s.name for s in plan(registry)}


def test_a_service_runs_only_when_its_code_can_be_started(tmp_path):
    assert command_for(Service("demo-sink", "services.demo_sink", ("--port", "1"))) == [
        sys.executable, "-m", "services.demo_sink", "--port", "1",
    ]
    assert command_for(Service("x", "services.no_such_service")) is None
    assert command_for(Service("x", "no_such_package.service")) is None
    # A module without a __main__ guard is not runnable by -m; without a CLI command either, it is skipped.
    assert command_for(Service("x", "services.core.retry")) is None
    # ... but a `switchboard` command for it is used instead when there is one.
    assert command_for(Service("x", "services.core.retry", ("-v",), cli=("topology",))) == [
        sys.executable, "-m", "services.cli", "topology", "-v",
    ]


class Lines:
    """Collects the supervisor's (and its children's) JSON lines as they arrive."""

    def __init__(self, stream: asyncio.StreamReader):
        self.entries: list[dict] = []
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read(stream))

    async def _read(self, stream):
        while line := await stream.readline():
            if line.startswith(b"{"):
                self.entries.append(orjson.loads(line))
                self._changed.set()

    async def wait_for(self, timeout: float = 20, where=None, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.entries:
                if all(entry.get(k) == v for k, v in match.items()) and (where is None or where(entry)):
                    return entry
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no log line matching {match}; got {[e.get('msg') for e in self.entries][-20:]}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_run_all_starts_what_exists_restarts_a_killed_child_and_stops_on_sigterm(tmp_path: Path):
    sink_port, smpp_port = free_port(), free_port()
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS.format(sink=sink_port, smpp=smpp_port))
    services = plan(parse_channels(channels.read_text(), str(channels)), demo_sink_port=sink_port)
    runnable = {s.name for s in services if command_for(s) is not None}
    skipped = {s.name for s in services} - runnable
    proc = await start_cli(
        "run", "all", "--channels", str(channels), "--demo-sink", str(sink_port),
        env={"INBOUND_PORT": str(free_port()), "METRICS_PORT": "0"},
    )
    lines = Lines(proc.stdout)
    pids: set[int] = set()
    try:
        for name in sorted(runnable):
            pids.add((await lines.wait_for(msg="service started", child=name))["pid"])
        for name in skipped:
            await lines.wait_for(msg="service skipped: its module is not installed or not runnable", child=name)
        assert "s3cr3t-pw" not in str(lines.entries)

        first = await lines.wait_for(msg="service started", child="demo-sink")
        await lines.wait_for(msg="listening", service="demo-sink")
        os.kill(first["pid"], signal.SIGKILL)
        crash = await lines.wait_for(msg="service exited; restarting", child="demo-sink")
        assert (crash["pid"], crash["returncode"], crash["restart_in_s"], crash["restarts"]) == (first["pid"], -9, 1.0, 1)
        again = await lines.wait_for(msg="service started", child="demo-sink", where=lambda e: e["pid"] != first["pid"])
        pids.add(again["pid"])
        answer = None
        async with httpx.AsyncClient() as client:  # and it works again
            for _ in range(100):
                try:
                    answer = await client.post(f"http://127.0.0.1:{sink_port}/send", json={"id": 1})
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            assert answer is not None and answer.status_code == 200

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
        elapsed = time.monotonic() - started
    finally:
        await stop(proc)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0
    assert elapsed < 10, f"stopping took {elapsed:.1f} s"
    assert not [pid for pid in pids if alive(pid)], "children outlived the supervisor"
    await lines.wait_for(msg="all services stopped")
    assert (await lines.wait_for(msg="service stopped", child="demo-sink"))["returncode"] == 0


SMSC_CHANNELS = """\
channels:
  - {{uuid: 6e1f0a52-6c1e-4b7a-9e0d-2f5a7c9b1e11, type: ucp, connection: op-ucp, address: "1234"}}
  - {{uuid: 7a2e1b63-6c1e-4b7a-9e0d-2f5a7c9b1e22, type: cimd2, connection: op-cimd, address: "5678"}}
smsc_connections:
  - {{name: op-ucp, protocol: ucp, host: 127.0.0.1, port: {ucp}, username: sb, password: "ucp-s3cr3t", simulator: true}}
  - {{name: op-cimd, protocol: cimd2, host: 127.0.0.1, port: {cimd2}, username: sb, password: "cimd-s3cr3t", simulator: true}}
"""


def test_ucp_and_cimd2_connections_get_their_connector_and_simulator():
    registry = parse_channels(SMSC_CHANNELS.format(ucp=5000, cimd2=9971), "channels.yaml")
    services = {s.name: s for s in plan(registry)}
    assert [n for n in services if "." in n] == ["smsc-sim.op-ucp", "ucp.op-ucp", "smsc-sim.op-cimd", "cimd2.op-cimd"]
    assert services["ucp.op-ucp"].module == "services.ucp_connector" and services["ucp.op-ucp"].cli == ("run", "ucp")
    assert services["cimd2.op-cimd"].args == ("--connection", "op-cimd")
    assert services["smsc-sim.op-cimd"].args == (
        "--host", "127.0.0.1", "--port", "9971", "--control-port", "9972", "--system-id", "sb", "--protocol", "cimd2",
    )
    assert dict(services["smsc-sim.op-ucp"].env) == {"SMSC_SIM_PASSWORD": "ucp-s3cr3t"}


async def test_run_all_sends_through_ucp_and_cimd2_simulators(tmp_path: Path, amqp, publisher, settings):
    from services.core.models import SendRequest
    from tests.helpers import Tap

    ports = {"ucp": free_port(), "cimd2": free_port()}
    channels = tmp_path / "channels.yaml"
    channels.write_text(SMSC_CHANNELS.format(**ports))
    status = await Tap.open(amqp, settings, "sms.status", "status.delivered.#")
    proc = await start_cli("run", "all", "--channels", str(channels), env={"INBOUND_PORT": str(free_port())})
    lines = Lines(proc.stdout)
    try:
        await lines.wait_for(msg="UCP bound", connection="op-ucp", timeout=30)
        await lines.wait_for(msg="CIMD2 bound", connection="op-cimd", timeout=30)
        await lines.wait_for(msg="service started", child="router")
        for n, channel in enumerate(("6e1f0a52-6c1e-4b7a-9e0d-2f5a7c9b1e11", "7a2e1b63-6c1e-4b7a-9e0d-2f5a7c9b1e22"), 1):
            request = SendRequest(id=n, channel_uuid=channel, to="+250788123123", text=f"through run all {n}")
            await publisher.publish("sms.outbound", f"send.{channel}", request.to_bytes())
        delivered = await status.wait(2, timeout=30)
        assert sorted((m.body["id"], m.body["transport"]) for m in delivered) == [(1, "ucp.op-ucp"), (2, "cimd2.op-cimd")]
        assert "ucp-s3cr3t" not in str(lines.entries) and "cimd-s3cr3t" not in str(lines.entries)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        await stop(proc)
    assert proc.returncode == 0


async def test_sighup_reaches_the_workers_that_reload_and_spares_the_others(tmp_path):
    """`run all` passes SIGHUP on to workers that re-read the channels file; the simulator
    (which would die of it) does not get it."""
    import asyncio
    import sys

    from services.supervisor import Child, Service

    script = (
        "import signal, sys, time, pathlib\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "signal.signal(signal.SIGHUP, lambda *_: out.write_text('reloaded'))\n"
        "out.write_text('ready')\n"
        "time.sleep(60)\n"
    )
    stopping = asyncio.Event()
    marks = {name: tmp_path / name for name in ("router", "sim")}
    children = {
        "router": Child(Service("router", "x", cli=("run", "router")), [sys.executable, "-c", script, str(marks["router"])], {}),
        "sim": Child(Service("sim", "x", cli=("smsc-sim",)), [sys.executable, "-c", script.replace("signal.signal(signal.SIGHUP, lambda *_: out.write_text('reloaded'))\n", ""), str(marks["sim"])], {}),
    }
    runs = [asyncio.ensure_future(child.run(stopping, grace=2)) for child in children.values()]
    try:
        for _ in range(100):
            if all(mark.exists() for mark in marks.values()):
                break
            await asyncio.sleep(0.05)
        for child in children.values():
            child.reload()
        for _ in range(100):
            if marks["router"].read_text() == "reloaded":
                break
            await asyncio.sleep(0.05)
        assert marks["router"].read_text() == "reloaded"
        assert children["sim"].process.returncode is None  # not signalled: SIGHUP's default would end it
        assert children["sim"].restarts == 0 and children["router"].restarts == 0
    finally:
        stopping.set()
        await asyncio.gather(*runs)
