"""The demo and deployment files agree with each other and with the code that reads them."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import httpx
import yaml

from services.core.channels import load_channels
from services.supervisor import plan
from tests.tools.procs import ROOT, free_port, json_lines, run_cli

MAKEFILE = (ROOT / "Makefile").read_text()


def make_var(name: str) -> str:
    return re.search(rf"^{name} := (.+)$", MAKEFILE, re.M).group(1).strip()


async def test_the_demo_channels_file_passes_channels_check():
    code, out, err = await run_cli("channels", "check", "compose/channels.demo.yaml")
    assert code == 0, err
    assert out.startswith("OK: 4 channels, 1 SMPP connections, 1 UCP connections, 1 CIMD2 connections")
    code, out, err = await run_cli("channels", "list", "compose/channels.demo.yaml")
    assert code == 0, err
    assert "ucp (connection demo-ucp)  Demo UCP  1235" in out and "cimd2 (connection demo-cimd2)  Demo CIMD2  1236" in out


def test_make_run_starts_what_the_demo_channels_file_needs():
    registry = load_channels(ROOT / make_var("DEMO_CHANNELS"))
    external = registry.get(make_var("DEMO_CHANNEL"))  # what `make demo-send` sends to
    assert external is not None and external.type == "external"
    assert external.config.send_url.startswith(f"http://127.0.0.1:{make_var('DEMO_SINK_PORT')}/")
    names = {s.name for s in plan(registry, demo_sink_port=int(make_var("DEMO_SINK_PORT")))}
    assert {"smsc-sim.demo-smsc", "smpp.demo-smsc", "demo-sink"} <= names
    assert {"smsc-sim.demo-ucp", "ucp.demo-ucp", "smsc-sim.demo-cimd2", "cimd2.demo-cimd2"} <= names
    assert "SEND_ALLOW_PRIVATE=true" in MAKEFILE  # the demo sink is on loopback


def test_compose_runs_every_worker_from_the_one_image_and_can_scale_them():
    compose = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())["services"]
    workers = {name: svc for name, svc in compose.items() if "build" in svc and svc["command"][:2] == ["switchboard", "run"]}
    assert set(workers) == {"inbound", "router", "external", "rest", "callbacks", "smpp", "ucp", "cimd2", "dashboard"}
    assert workers["ucp"]["profiles"] == ["ucp"] and workers["cimd2"]["profiles"] == ["cimd2"]  # only where configured
    simulator = compose["smsc-sim"]
    assert simulator["command"][:2] == ["switchboard", "smsc-sim"] and "0.0.0.0" in simulator["command"]
    assert simulator["ports"] == ["2775:2775", "2776:2776"]
    for name, svc in workers.items():
        assert svc["command"][:3] == ["switchboard", "run", name]
        assert (ROOT / "compose" / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        assert "container_name" not in svc  # --scale needs generated names
        assert svc["environment"]["RABBITMQ_URL"] == "amqp://guest:guest@rabbitmq:5672/"
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert set(svc["depends_on"]) == {"rabbitmq", "redis"}
    assert all("ports" not in svc for name, svc in workers.items() if name not in ("inbound", "dashboard"))
    assert workers["inbound"]["ports"] == ["8080-8089:8080"]  # one host port per scaled copy
    assert workers["smpp"]["command"][3] == "--connection"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "USER switchboard" in dockerfile
    assert 'CMD ["switchboard", "run", "all"]' in dockerfile


async def test_the_demo_sink_logs_each_request_with_secrets_masked_and_answers_200():
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.demo_sink", "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    answer = await client.post(
                        f"http://127.0.0.1:{port}/send?to=%2B250788123123", json={"id": 1241244, "text": "Love"},
                        headers={"Authorization": "Bearer sk-live-1234"},
                    )
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
        assert answer.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    [request] = [e for e in json_lines(out.decode()) if e["msg"] == "request received"]
    assert (request["method"], request["path"], request["query"]) == ("POST", "/send", "to=%2B250788123123")
    assert request["body"] == '{"id":1241244,"text":"Love"}'
    assert request["headers"]["authorization"] == "**********"
    assert "sk-live-1234" not in out.decode()

