"""Scenario `inbound`: the HTTP edge under form-encoded receive requests.

- baseline: raw aio-pika confirmed publishes of the same body (an InboundMessage) to the same
  exchange and queue, 64 at a time, in a separate process: what the broker and one Python
  client can do without any HTTP in front;
- max: `wrk` with 64 keep-alive connections for 20 s against `/c/ex/{uuid}/receive`; a Lua
  script counts every answer that is not 200 (the run fails the check when there is one);
- half: the same at half the measured maximum rate, paced by wrk's `delay()` hook, for p99.

CPU per request is the inbound process's user+system time over the measured window
(bench.common.cpu_seconds); the baseline process reports its own the same way.
`python -m bench.scenarios.inbound baseline SECONDS CONCURRENCY` is the baseline's process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, Row, bench_env, cpu_seconds, percentile, start, stop

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = 64
CHANNEL_UUID = "8eb23e93-5ecb-45ba-b726-3b064e0c56ab"
FORM = "from=%2B250788383383&text=Hello+from+the+bench&date=2017-06-23T12:30:00Z"
CHANNELS_YAML = f"""channels:
  - uuid: {CHANNEL_UUID}
    name: bench
    type: external
    country: RW
    address: "+250788000000"
    config:
      send_url: http://127.0.0.1:9/send
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_FORM")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  bad = 0
end
function delay()
  return pause
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("NON200 %d\\n", total))
  io.write(string.format("P50US %d\\nP99US %d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    """wrk from the distribution; installed with apt-get when missing (as root)."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True, timeout=300)
        path = shutil.which("wrk")
        if path:
            return path
    raise SystemExit("bench inbound needs wrk: install it with `apt-get install -y wrk` (or your distribution's package)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"inbound edge exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"inbound edge not healthy after {timeout:.0f} s ({url})")


def run_wrk(wrk: str, url: str, script: Path, seconds: int, delay_ms: float = 0) -> dict:
    env = dict(os.environ, BENCH_FORM=FORM, BENCH_DELAY_MS=str(int(delay_ms)))
    out = subprocess.run(
        [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, env=env, timeout=seconds + 60,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    requests = re.search(r"([0-9]+) requests in", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if not rate or not requests:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return {
        "rate": float(rate.group(1)),
        "requests": int(requests.group(1)),
        "non200": int(re.search(r"NON200 ([0-9]+)", out).group(1)),
        "p50_ms": int(re.search(r"P50US ([0-9]+)", out).group(1)) / 1000,
        "p99_ms": int(re.search(r"P99US ([0-9]+)", out).group(1)) / 1000,
        "socket_errors": errors.group(1) if errors else "",
    }


def measure_edge(wrk: str, pid: int, url: str, script: Path, seconds: int, delay_ms: float = 0) -> tuple[dict, float]:
    before = cpu_seconds(pid)
    result = run_wrk(wrk, url, script, seconds, delay_ms)
    cpu = cpu_seconds(pid) - before
    return result, cpu * 1000 / max(result["requests"], 1)


def baseline(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.inbound", "baseline", str(SECONDS), str(CONNECTIONS)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120,
    )
    if out.returncode != 0:
        raise SystemExit(f"baseline publisher failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def note(result: dict, extra: str) -> str:
    parts = [f"non-200: {result['non200']}"]
    if result["socket_errors"]:
        parts.append(f"socket errors: {result['socket_errors']}")
    return "; ".join(parts + [extra])


def run() -> list[Row]:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-inbound-") as tmp:
        channels = Path(tmp) / "channels.yaml"
        channels.write_text(CHANNELS_YAML)
        script = Path(tmp) / "receive.lua"
        script.write_text(WRK_SCRIPT)
        port = free_port()
        env = bench_env(SWITCHBOARD_CHANNELS=str(channels), INBOUND_HOST="127.0.0.1", INBOUND_PORT=str(port))
        try:
            print("inbound: baseline (aio-pika confirmed publishes)", file=sys.stderr, flush=True)
            base = baseline(env)
            proc = start(["-m", "services.inbound"], env, Path(tmp) / "inbound.log")
            try:
                wait_healthy(f"http://127.0.0.1:{port}/health", proc)
                url = f"http://127.0.0.1:{port}/c/ex/{CHANNEL_UUID}/receive"
                run_wrk(wrk, url, script, 3)  # warm-up: connections, caches, broker channel
                print("inbound: max rate", file=sys.stderr, flush=True)
                top, top_cpu = measure_edge(wrk, proc.pid, url, script, SECONDS)
                half_rate = top["rate"] / 2
                # Each connection waits so that all of them together offer half the max rate.
                delay_ms = max(CONNECTIONS * 1000 / half_rate - top["p50_ms"] / 2, 0)
                print(f"inbound: paced at ~{half_rate:,.0f} req/s", file=sys.stderr, flush=True)
                half, half_cpu = measure_edge(wrk, proc.pid, url, script, SECONDS, delay_ms)
            finally:
                stop(proc)
        finally:
            asyncio.run(delete_prefixed(env))
    base_rate = base["rate"]
    return [
        Row("inbound", "baseline: aio-pika confirmed publish, 64 in flight", base_rate, "msg/s", base["p50_ms"],
            base["p99_ms"], {"publisher": base["cpu_ms"]}, 1.0, "same body, exchange and queue; latency = confirm wait"),
        Row("inbound", "receive (form POST), 64 keep-alive clients", top["rate"], "req/s", top["p50_ms"], top["p99_ms"],
            {"inbound": top_cpu}, top["rate"] / base_rate, note(top, "goal >= 0.50x")),
        Row("inbound", f"receive paced at half max ({half_rate:,.0f} req/s offered)", half["rate"], "req/s",
            half["p50_ms"], half["p99_ms"], {"inbound": half_cpu}, half["rate"] / base_rate,
            note(half, "goal p99 < 50 ms")),
    ]


async def delete_prefixed(env: dict[str, str]) -> None:
    """Remove the queues and exchanges this run declared under its prefix."""
    import aio_pika

    from services.core.broker import delete_topology
    from services.core.settings import Settings

    connection = await aio_pika.connect(env["RABBITMQ_URL"])
    try:
        await delete_topology(connection, Settings(RABBITMQ_URL=env["RABBITMQ_URL"], SWITCHBOARD_PREFIX=env["SWITCHBOARD_PREFIX"]))
    finally:
        await connection.close()


async def _publish_baseline(seconds: float, concurrency: int) -> dict:
    """Confirmed publishes of an InboundMessage body, `concurrency` in flight, for `seconds`."""
    import aio_pika

    from services.core.broker import connect, declare_topology
    from services.core.models import InboundMessage
    from services.core.settings import Settings

    settings = Settings()
    connection = await connect(settings, attempts=5)
    await declare_topology(connection, settings)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(settings.name("sms.inbound"), "topic", durable=True)
    body = InboundMessage(
        channel_uuid=CHANNEL_UUID, urn="tel:+250788383383", from_="+250788383383", text="Hello from the bench",
        received_on="2017-06-23T12:30:00.000Z", transport="external",
    ).to_bytes()
    key = f"msg.{CHANNEL_UUID}"
    count = 0
    latencies: list[float] = []
    loop = asyncio.get_running_loop()

    async def worker(deadline: float) -> None:
        nonlocal count
        while loop.time() < deadline:
            message = aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            sent = time.perf_counter()
            await exchange.publish(message, key, mandatory=True)
            latencies.append(time.perf_counter() - sent)
            count += 1

    await asyncio.gather(*(worker(loop.time() + 2) for _ in range(concurrency)))  # warm-up
    count = 0
    latencies.clear()
    cpu0, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(loop.time() + seconds) for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    await connection.close()
    return {
        "rate": count / elapsed, "count": count, "cpu_ms": cpu * 1000 / max(count, 1),
        "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
    }


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "baseline":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_publish_baseline(float(sys.argv[2]), int(sys.argv[3])))))
