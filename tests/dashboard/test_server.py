"""`switchboard run dashboard` as a real process: it refuses to listen beyond loopback without
a token, and with one every route answers 401 unless the request carries it."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from tests.tools.procs import free_port, run_cli, start_cli, stop

ROUTES = ["/", "/static/dashboard.js", "/static/dashboard.css", "/events", "/api/snapshot", "/contract",
          "/contract.yaml", "/no-such-page"]
TOKEN = "s3cret-dash-token"


async def wait_http(url: str, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            try:
                await client.get(url, timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


async def test_beyond_loopback_without_a_token_it_refuses_to_start():
    code, out, err = await run_cli("run", "dashboard", env={"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": str(free_port()),
                                                              "DASHBOARD_TOKEN": ""})
    assert code == 2
    assert "DASHBOARD_TOKEN" in err and "beyond loopback" in err


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_beyond_loopback_every_route_needs_the_token():
    port = free_port()
    proc = await start_cli("run", "dashboard", env={"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": str(port),
                                                    "DASHBOARD_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/")
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for route in ROUTES:
                for header in (None, f"Bearer {TOKEN}x", "Bearer", basic("admin", "wrong"), "Basic !!notbase64", TOKEN):
                    headers = {"Authorization": header} if header is not None else {}
                    answer = await client.get(route, headers=headers)
                    assert answer.status_code == 401, (route, header, answer.status_code)
                    assert answer.headers["www-authenticate"].startswith("Basic")
                    assert TOKEN not in answer.text
                answer = await client.post(route)
                assert answer.status_code == 401
            for header in (f"Bearer {TOKEN}", basic("anyone", TOKEN)):
                page = await client.get("/", headers={"Authorization": header})
                assert page.status_code == 200 and "<title>Switchboard</title>" in page.text
                assert "default-src 'self'" in page.headers["content-security-policy"]
                assert (await client.get("/api/snapshot", headers={"Authorization": header})).json()["statuses"] >= 0
                async with client.stream("GET", "/events", headers={"Authorization": header}) as stream:
                    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
                    async for line in stream.aiter_lines():
                        if line.startswith("data: "):
                            break
            # read-only: a write method is refused even with the token
            assert (await client.post("/api/snapshot", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 405
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        await stop(proc)


@pytest.mark.parametrize("html_route", ["/", "/contract"])
async def test_pages_load_nothing_from_another_host(html_route):
    port = free_port()
    proc = await start_cli("run", "dashboard", env={"DASHBOARD_PORT": str(port)})
    try:
        await wait_http(f"http://127.0.0.1:{port}/")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            text = (await client.get(html_route)).text
        assert "http://" not in text.replace("http://127.0.0.1", "") and "https://" not in text.split("<h2>Bodies</h2>")[0]
        assert "<script src=\"static/dashboard.js\"" in text or html_route == "/contract"
    finally:
        await stop(proc)


def test_run_all_ends_its_start_up_with_what_to_do_next():
    from services.core.channels import load_channels
    from services.supervisor import next_steps
    from tests.tools.procs import ROOT

    registry = load_channels(ROOT / "compose" / "channels.demo.yaml")
    text = "\n".join(next_steps(registry, {"DASHBOARD_PORT": "8123", "DASHBOARD_HOST": "0.0.0.0"}, demo=True))
    assert "http://127.0.0.1:8123/" in text
    assert "/c/ex/8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11/receive" in text
    assert "switchboard send --channel 3b9e7c21-0d4f-4e6a-8b5c-6a1d2e3f4a22" in text and "make demo-mo" in text
    assert "POST http://127.0.0.1:2776/mo" in text


def test_console_log_format_is_one_readable_line_per_event():
    import logging

    from services.core.logs import ConsoleFormatter

    record = logging.makeLogRecord({"name": "services.outbound.router", "levelname": "WARNING", "msg": "SMPP bind failed",
                                    "service": "smpp-demo", "connection": "demo", "password": "x"})
    line = ConsoleFormatter().format(record)
    assert "\n" not in line and not line.startswith("{")
    assert "smpp-demo" in line and "warning" in line and "SMPP bind failed" in line and "connection=demo" in line
