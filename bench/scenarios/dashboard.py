"""The dashboard under a steady stream of statuses: CPU per status and RSS as they add up.

The dashboard runs as its own process (`python -m services.dashboard`) with one live page
attached (an event stream read by this process, as a browser would). StatusUpdate bodies
shaped as the outbound pipeline publishes them (wired, then delivered or failed for the same
id, over 20 channels) are published to `sms.status` with confirms at BENCH_DASHBOARD_RATE
per second (default 1,000) until BENCH_DASHBOARD_N statuses (default 200,000). Reported:
CPU ms per status of the dashboard process (/proc), its RSS at 10 %, 50 % and 100 % of the
run, and whether it counted every status. Goal (issue 12): <= 0.1 ms/status, RSS flat.

No default queue is declared, so the only queue on `sms.status` is the dashboard's own one
(nothing else fills up on the shared broker).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx

from bench.common import ROOT, Row, bench_env, cpu_seconds, start, stop

N = int(os.environ.get("BENCH_DASHBOARD_N", "200000"))
RATE = float(os.environ.get("BENCH_DASHBOARD_RATE", "1000"))
TICK_S = 0.02
IN_FLIGHT = 500
CHANNELS = [str(uuid.UUID(int=i + 1, version=4)) for i in range(20)]
LOGS = ROOT / "bench" / "results" / "logs"


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def status_body(i: int) -> tuple[str, bytes]:
    """The i-th status: even i wired, odd i its delivered (or every 20th message failed)."""
    msg, second = divmod(i, 2)
    channel = CHANNELS[msg % len(CHANNELS)]
    if not second:
        state, error = "wired", "null"
    elif msg % 20 == 0:
        state, error = "failed", '{"code":"dlr_UNDELIV","message":"receipt said UNDELIV","retry_in_ms":null}'
    else:
        state, error = "delivered", "null"
    body = (f'{{"id":{msg},"uuid":null,"channel_uuid":"{channel}","status":"{state}","external_id":"SM{msg}",'
            f'"transport":"external","attempt":1,"error":{error},"timestamp":"2026-12-01T00:00:00.000Z"}}')  # fmt: skip
    return f"status.{state}.{channel}", body.encode()


async def watch_page(url: str, stop_event: asyncio.Event) -> int:
    """Read the live stream as an open page would; returns the events received."""
    events = 0
    async with httpx.AsyncClient(timeout=None) as client, client.stream("GET", url + "events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events += 1
            if stop_event.is_set():
                break
    return events


async def drive(env: dict[str, str], proc: subprocess.Popen, url: str) -> dict:
    os.environ.update({k: env[k] for k in ("SWITCHBOARD_PREFIX", "RABBITMQ_URL")})
    from services.core.broker import Publisher, connect
    from services.core.settings import Settings

    settings = Settings()
    connection = await connect(settings, attempts=3)
    publisher = await Publisher(connection, settings).start()
    async with httpx.AsyncClient() as client:
        for _ in range(150):
            try:
                await client.get(url + "api/snapshot", timeout=1)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    page_stop = asyncio.Event()
    page = asyncio.ensure_future(watch_page(url, page_stop))
    for i in range(2000):  # warm-up, not measured
        key, body = status_body(10_000_000 + i)
        await publisher.publish("sms.status", key, body)
    await asyncio.sleep(2)
    cpu0, started = cpu_seconds(proc.pid), time.monotonic()
    rss = {"start": rss_mb(proc.pid)}
    checkpoints = {N // 10: "10%", N // 2: "50%", N: "100%"}
    per_tick = max(1, int(RATE * TICK_S))
    in_flight = asyncio.Semaphore(IN_FLIGHT)  # confirms are awaited in the background, not per tick

    failed = 0

    async def publish(key: str, body: bytes) -> None:
        nonlocal failed
        try:
            await publisher.publish("sms.status", key, body)
        except Exception:  # a loaded broker timed out: counted, shown in the note
            failed += 1
        finally:
            in_flight.release()

    pending: set[asyncio.Task] = set()
    sent = 0
    while sent < N:
        due = started + sent / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        batch = [status_body(i) for i in range(sent, min(N, sent + per_tick))]
        for key, body in batch:
            await in_flight.acquire()
            task = asyncio.ensure_future(publish(key, body))
            pending.add(task)
            task.add_done_callback(pending.discard)
        before, sent = sent, sent + len(batch)
        for mark, label in checkpoints.items():
            if before < mark <= sent:
                rss[label] = rss_mb(proc.pid)
    await asyncio.gather(*pending)
    elapsed = time.monotonic() - started
    counted = 0
    async with httpx.AsyncClient() as client:
        for _ in range(100):  # the dashboard catches up
            counted = (await client.get(url + "api/snapshot", timeout=5)).json()["statuses"] - 2000
            if counted >= N - failed:
                break
            await asyncio.sleep(0.2)
    cpu = cpu_seconds(proc.pid) - cpu0
    page_stop.set()
    page.cancel()
    await publisher.close()
    from services.core.broker import delete_topology

    await delete_topology(connection, settings)
    await connection.close()
    return {"rate": N / elapsed, "cpu_ms": cpu * 1000 / max(counted, 1), "rss": rss, "counted": counted, "failed": failed}


def run() -> list[Row]:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    LOGS.mkdir(parents=True, exist_ok=True)
    port = 18000 + os.getpid() % 1000
    env = bench_env(DASHBOARD_PORT=str(port), DASHBOARD_HOST="127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    proc = start(["-m", "services.dashboard"], env, LOGS / "dashboard.log")
    try:
        result = asyncio.run(drive(env, proc, url))
    finally:
        stop(proc)
    rss = ", ".join(f"{k} {v:.1f}" for k, v in result["rss"].items())
    return [
        Row("dashboard", f"{N:,} statuses at {RATE:,.0f}/s, one page open", result["rate"], unit="status/s",
            cpu_ms={"dashboard": result["cpu_ms"]},
            note=f"RSS MB: {rss}; counted {result['counted']:,}/{N:,} ({result['failed']} publishes failed)"),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.common import table

    print(table(run()), file=sys.stdout)
