"""Scenario `outbound`: SendRequests through the router and the external connector.

Pipeline: the bench publishes SendRequests to `sms.outbound`; the router (its own process)
relays them to `sms.transport`; the external connector (its own process) POSTs each to a
local sink answering 200 (bench/http_sink.py, its own process) and publishes `wired`; the
bench counts `wired` statuses from a queue bound to `sms.status`.

Baseline, same run, same bodies: two raw aio-pika relays (bench/relay.py, separate
processes; consume, publish with confirm, ack) through two quorum queues to a counted queue:
the same number of hops with no validation, no HTTP, no Redis.

Reported: msgs/s end to end at full speed (N messages published as fast as the broker
confirms), p50/p99 publish -> final latency with a publisher paced at half that rate, and
each worker's CPU time per message during the full-speed run (from /proc).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid

import aio_pika
import orjson
import yaml

from bench.common import ROOT, Row, bench_env, cpu_seconds, percentile, start, stop
from services.core.broker import connect, declare_topology, delete_topology
from services.core.settings import Settings

N = int(os.environ.get("BENCH_OUTBOUND_N", "20000"))
PACED_SECONDS = float(os.environ.get("BENCH_OUTBOUND_PACED_S", "8"))
IN_FLIGHT = 1000  # publishes awaiting their confirm at once
CHANNEL_UUID = "b3c9a6a2-4f0e-4f2b-9a55-6c1d2e3f4a5b"
LOGS = ROOT / "bench" / "results" / "logs"


def send_body(msg_id: int) -> bytes:
    return orjson.dumps(
        {
            "id": msg_id,
            "uuid": str(uuid.uuid4()),
            "channel_uuid": CHANNEL_UUID,
            "to": "+250788123123",
            "text": "Love is patient. Love is kind.",
            "attachments": [],
            "quick_replies": [],
            "session_status": "",
            "high_priority": False,
            "created_on": "2026-11-24T10:00:00Z",
            "expires_on": None,
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Driver:
    """Publishes bodies and timestamps their arrival on a counted queue (auto-ack)."""

    def __init__(self, connection, exchange: str, routing_key, done_queue: str, id_of):
        self.connection = connection
        self.exchange_name = exchange
        self.routing_key = routing_key
        self.done_queue = done_queue
        self.id_of = id_of
        self.arrived: dict[int, float] = {}
        self._want = 0
        self._done = asyncio.Event()

    async def start(self) -> Driver:
        self.publish_channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await self.publish_channel.get_exchange(self.exchange_name)
        consume_channel = await self.connection.channel()
        await consume_channel.set_qos(prefetch_count=2000)
        queue = await consume_channel.get_queue(self.done_queue)
        await queue.consume(self._on_done, no_ack=True)
        return self

    async def _on_done(self, message) -> None:
        self.arrived[self.id_of(message.body)] = time.perf_counter()
        if len(self.arrived) >= self._want:
            self._done.set()

    async def _publish(self, msg_id: int) -> None:
        message = aio_pika.Message(send_body(msg_id), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   content_type="application/json", message_id=str(msg_id))  # fmt: skip
        await self.exchange.publish(message, self.routing_key)

    async def full_speed(self, ids: range, timeout: float = 600) -> tuple[float, float]:
        """Publish `ids` as fast as confirms allow; (seconds to the last arrival, msgs/s)."""
        self._want, self._done = len(self.arrived) + len(ids), asyncio.Event()
        window = asyncio.Semaphore(IN_FLIGHT)
        started = time.perf_counter()

        async def one(msg_id: int) -> None:
            try:
                await self._publish(msg_id)
            finally:
                window.release()

        tasks = []
        for msg_id in ids:
            await window.acquire()
            tasks.append(asyncio.ensure_future(one(msg_id)))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(self._done.wait(), timeout)
        elapsed = max(self.arrived[i] for i in ids) - started
        return elapsed, len(ids) / elapsed

    async def paced(self, ids: range, rate: float, timeout: float = 120) -> list[float]:
        """Publish `ids` at `rate` per second; publish -> arrival latencies in ms."""
        self._want, self._done = len(self.arrived) + len(ids), asyncio.Event()
        sent: dict[int, float] = {}
        tasks = []
        started = time.perf_counter()
        for index, msg_id in enumerate(ids):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[msg_id] = time.perf_counter()
            tasks.append(asyncio.ensure_future(self._publish(msg_id)))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(self._done.wait(), timeout)
        return [(self.arrived[i] - sent[i]) * 1000 for i in ids]


def status_id(body: bytes) -> int:
    return orjson.loads(body)["id"]


async def wait_consumers(connection, queues: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for name in queues:
        while True:
            channel = await connection.channel()
            declared = await channel.declare_queue(name, passive=True)
            await channel.close()
            if declared.declaration_result.consumer_count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no consumer on {name}; see {LOGS}")
            await asyncio.sleep(0.2)


async def measure(driver: Driver, procs: dict[str, subprocess.Popen]) -> dict:
    """Full speed (rate, CPU per message per process), then paced at half that rate."""
    await driver.full_speed(range(1_000_000, 1_000_200))  # warm-up: connections, pools, caches
    cpu_before = {name: cpu_seconds(p.pid) for name, p in procs.items()}
    elapsed, rate = await driver.full_speed(range(N))
    await asyncio.sleep(0.5)  # the last acks and channel logs
    cpu = {name: (cpu_seconds(p.pid) - cpu_before[name]) * 1000 / N for name, p in procs.items()}
    count = max(200, int(rate / 2 * PACED_SECONDS))
    latencies = await driver.paced(range(2_000_000, 2_000_000 + count), rate / 2)
    return {"rate": rate, "cpu": cpu, "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "paced": rate / 2}


async def baseline() -> dict:
    env = bench_env()
    prefix = env["SWITCHBOARD_PREFIX"]
    connection = await aio_pika.connect_robust(env["RABBITMQ_URL"])
    channel = await connection.channel()
    exchange = await channel.declare_exchange(f"{prefix}base.x", "direct", durable=True)
    for name in ("in", "mid"):
        queue = await channel.declare_queue(f"{prefix}base.{name}", durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, name)
    done = await channel.declare_queue(f"{prefix}base.out", exclusive=True)
    await done.bind(exchange, "out")
    LOGS.mkdir(parents=True, exist_ok=True)
    procs = {
        "hop 1": start(["-m", "bench.relay", f"{prefix}base.in", f"{prefix}base.x", "mid"], env, LOGS / "relay1.log"),
        "hop 2": start(["-m", "bench.relay", f"{prefix}base.mid", f"{prefix}base.x", "out"], env, LOGS / "relay2.log"),
    }
    try:
        await wait_consumers(connection, [f"{prefix}base.in", f"{prefix}base.mid"])
        driver = await Driver(connection, f"{prefix}base.x", "in", done.name, status_id).start()
        return await measure(driver, procs)
    finally:
        for proc in procs.values():
            stop(proc)
        for name in ("in", "mid"):
            await channel.queue_delete(f"{prefix}base.{name}")
        await channel.exchange_delete(f"{prefix}base.x")
        await connection.close()


def external_channel(port: int) -> dict:
    """The brief's json external channel, posting to the local sink."""
    return {
        "uuid": CHANNEL_UUID, "type": "external", "id": 346, "address": "+5582999489287",
        "config": {"send_url": f"http://127.0.0.1:{port}/send", "content_type": "json"},
    }  # fmt: skip


async def pipeline(
    make_channel=external_channel,
    worker: tuple[str, ...] = ("-m", "services.outbound.external"),
    queue: str = "transport.external",
    tag: str = "external",
) -> dict:
    """Router + one HTTP connector (separate processes) to the local sink, counted at `wired`.

    Scenario `rest` runs the same pipeline with the REST connector, so both share this code.
    """
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    channels = LOGS / f"{tag}-channels.yaml"
    channels.write_text(yaml.safe_dump({"channels": [make_channel(port)]}))
    env = bench_env(SWITCHBOARD_CHANNELS=str(channels))
    settings = Settings(_env_file=None, **{k: v for k, v in env.items() if k in ("RABBITMQ_URL", "SWITCHBOARD_PREFIX")})
    connection = await connect(settings, attempts=3)
    await declare_topology(connection, settings)
    channel = await connection.channel()
    done = await channel.declare_queue(settings.name("bench.wired"), exclusive=True)
    await done.bind(settings.name("sms.status"), "status.wired.#")
    sink = start(["-m", "bench.http_sink", str(port)], env, LOGS / f"{tag}-sink.log")
    procs = {
        "router": start(["-m", "services.outbound.router"], env, LOGS / f"{tag}-router.log"),
        tag: start(list(worker), env, LOGS / f"{tag}.log"),
    }
    try:
        await wait_consumers(connection, [settings.name("outbound.router"), settings.name(queue)])
        driver = await Driver(connection, settings.name("sms.outbound"), f"send.{CHANNEL_UUID}", done.name, status_id).start()
        return await measure(driver, procs)
    finally:
        for proc in [*procs.values(), sink]:
            stop(proc)
        await delete_topology(connection, settings)
        await connection.close()
        _clear_redis(env)


def _clear_redis(env: dict[str, str]) -> None:
    import redis

    client = redis.from_url(env["REDIS_URL"])
    keys = list(client.scan_iter(match=env["SWITCHBOARD_PREFIX"] + "*", count=1000))
    for start_at in range(0, len(keys), 1000):
        client.delete(*keys[start_at : start_at + 1000])


def run() -> list[Row]:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    base = asyncio.run(baseline())
    ours = asyncio.run(pipeline())
    base_hop = sum(base["cpu"].values()) / len(base["cpu"])
    rows = [
        Row("outbound", "baseline: 2 raw aio-pika hops", base["rate"], p50_ms=base["p50"], p99_ms=base["p99"],
            cpu_ms=base["cpu"], ratio=1.0, note=f"latency paced at {base['paced']:.0f}/s"),
        Row("outbound", "router + external -> wired", ours["rate"], p50_ms=ours["p50"], p99_ms=ours["p99"],
            cpu_ms=ours["cpu"], ratio=ours["rate"] / base["rate"],
            note=f"latency paced at {ours['paced']:.0f}/s; CPU vs baseline hop: "
            + ", ".join(f"{k} {v / base_hop:.2f}x" for k, v in ours["cpu"].items())),
    ]  # fmt: skip
    return rows


if __name__ == "__main__":
    from bench.common import table

    print(table(run()), file=sys.stdout)
