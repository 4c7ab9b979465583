"""The dashboard in a real browser (Debian's chromium driven by Playwright's async API),
fed by the demo pipeline as real processes: counts and the failure code appear within 5 s,
a stopped SMSC shows as not bound within 10 s and bound again after a restart, a killed
worker goes stale. A screenshot is kept in test-artifacts/.

These tests run their scenario on an event loop of their own in a thread of their own, so
Playwright never shares pytest-asyncio's session loop with the other tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from services.core.broker import Publisher, connect
from services.core.models import SendRequest
from services.core.settings import Settings
from tests.dashboard.pipeline import CHANNEL, demo_pipeline
from tests.tools.procs import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is not installed (.ci/run installs chromium)")


def in_own_loop(scenario, *args, timeout: float = 240):
    """Run `scenario(*args)` with asyncio.run in a new thread; re-raise what it raised."""
    outcome: dict[str, BaseException] = {}

    def target():
        try:
            asyncio.run(scenario(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="browser-scenario", daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the browser scenario did not finish within {timeout} s"
    if "error" in outcome:
        raise outcome["error"]


async def publish_requests(good: int, failing: int) -> list[SendRequest]:
    settings = Settings()
    connection = await connect(settings, attempts=3)
    publisher = await Publisher(connection, settings).start()
    run = uuid.uuid4().hex[:6]
    requests = [SendRequest(id=f"{run}-ok-{i}", channel_uuid=CHANNEL, to=f"+25078812{i:04d}", text="hello") for i in range(good)]
    requests += [SendRequest(id=f"{run}-bad-{i}", channel_uuid=CHANNEL, to=f"+99912{i:04d}", text="hello") for i in range(failing)]
    try:
        await asyncio.gather(*(publisher.publish("sms.outbound", f"send.{CHANNEL}", r.to_bytes(), message_id=str(r.id))
                               for r in requests))  # fmt: skip
    finally:
        await publisher.close()
        await connection.close()
    return requests


async def scenario(logs: Path) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    async with demo_pipeline(logs, heartbeat_s=1.0) as pipeline, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: r.url.startswith(pipeline.dashboard_url) or outside.append(r.url))
            await page.goto(pipeline.dashboard_url)
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            await pipeline.wait_bound()
            bind = page.locator("#binds tr[data-connection=demosim] .bind-state")
            await expect(bind).to_have_text("bound", timeout=10_000)

            # 1. messages through the pipeline, some failing: the counts and the code within 5 s
            await publish_requests(good=5, failing=3)
            row = page.locator(f"#channels tr[data-channel='{CHANNEL}']")
            await expect(row.locator("td[data-status=wired] .last5")).to_have_text("5", timeout=5_000)
            await expect(row.locator("td[data-status=delivered] .last5")).to_have_text("5", timeout=5_000)
            await expect(row.locator("td[data-status=failed] .last5")).to_have_text("3", timeout=5_000)
            await expect(row.locator(".err-code")).to_have_text("smpp_ESME_RINVDSTADR", timeout=5_000)
            await expect(row.locator(".ratio")).to_have_text("62.5 %", timeout=5_000)
            await expect(row.locator("svg polyline.failed")).to_have_count(1)
            # the live tail, filtered by status
            await page.select_option("#f-status", "failed")
            await expect(page.locator("#tail tbody tr")).to_have_count(3, timeout=5_000)
            assert set(await page.locator("#tail tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")) == {"failed"}
            await page.select_option("#f-status", "")
            await expect(page.locator("#queues tr[data-queue$='dead.letters']")).to_have_count(1, timeout=10_000)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # 2. the SMSC goes away: not bound within 10 s; back: bound again
            await pipeline.kill("simulator")
            await expect(bind).not_to_have_text("bound", timeout=10_000)
            await pipeline.start_simulator()
            await expect(bind).to_have_text("bound", timeout=20_000)

            # 3. a worker dies: stale (3 missed heartbeats of 1 s)
            router = page.locator("#workers tr[data-service=router] .worker-state")
            await expect(router).to_have_text("alive", timeout=5_000)
            await pipeline.kill("router")
            await expect(router).to_contain_text("stale", timeout=15_000)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-stale.png"), full_page=True)
            assert not outside, f"the page loaded from elsewhere: {outside}"
        finally:
            await browser.close()


def test_the_dashboard_in_a_browser(tmp_path: Path):
    in_own_loop(scenario, tmp_path / "logs")
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


async def contract_scenario(logs: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with demo_pipeline(logs, heartbeat_s=1.0) as pipeline, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(pipeline.dashboard_url)
            await page.click("text=Contract (AsyncAPI)")
            await expect(page.locator("h1")).to_contain_text("Switchboard")
            await expect(page.locator("#ch-sms\\.outbound")).to_have_text("sms.outbound")
            await expect(page.locator("#schema-SendRequest")).to_have_count(1)
        finally:
            await browser.close()


def test_the_contract_page_in_a_browser(tmp_path: Path):
    in_own_loop(contract_scenario, tmp_path / "logs")
