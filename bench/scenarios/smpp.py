"""Scenario `smpp`: SendRequests through the router and the SMPP connector to the simulator.

Pipeline, at window 10 and at window 50: the bench publishes N SendRequests to
`sms.outbound`; the router and the SMPP connector run as their own processes; the SMSC
simulator (its own process) answers every submit_sm and sends a receipt for each; the bench
counts `wired` and `delivered` statuses. Reported: submit_sm/s (first publish -> last
`wired`), receipts/s (first publish -> last `delivered`), and the connector's CPU time per
message, receipt included (from /proc).

Baselines, same run, same simulator process and window:

- Kannel (Debian's bearerbox + smsbox, smpp driver; bench/kannel.py), driven through its HTTP
  `sendsms` with `dlr-mask` and a local `dlr-url`, interleaved with our pipeline at each
  window: the goal is our rate >= Kannel's. CPU ms per message is reported per process for
  both, RabbitMQ (beam.smp) included; during Kannel's run the broker's figure is the
  background the other users of this machine cause, read it as the noise floor;
- a bare smpplib client (``smpplib.client.Client`` in a thread, TCP_NODELAY) that submits
  N messages keeping `window` unanswered, answers every receipt and stops at the last one:
  what the SMSC link costs with no broker and no Redis;
- the raw relay of the outbound scenario (two raw aio-pika hops, bench/relay.py): the
  pipeline goal is at least 0.5x its rate.

The `ucp` and `cimd2` scenarios run the same pipeline and Kannel comparison for their
protocol through `kannel_comparison` (no smpplib or relay baseline there).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from functools import partial
from pathlib import Path

import aio_pika
import orjson
import smpplib.client
import smpplib.consts
import yaml

from bench.common import Row, bench_env, cpu_seconds, start, stop
from bench.kannel import DRIVERS, ensure_kannel, run_kannel
from bench.scenarios.outbound import LOGS, _clear_redis, free_port, wait_consumers
from bench.scenarios.outbound import baseline as relay_baseline
from services.core.broker import connect, declare_topology, delete_topology
from services.core.settings import Settings

N = int(os.environ.get("BENCH_SMPP_N", "20000"))  # BENCH_SMPP_N=2000 for a quick run
WINDOWS = (10, 50)
IN_FLIGHT = 1000
CHANNEL_UUID = "5c2d6a1e-0c6e-4b8e-9d1a-7f3e2b1c0d9e"
CONNECTION = "bench-smsc"
TEXT = "Love is patient. Love is kind."


# --------------------------------------------------------------------------- the simulator


def start_simulator(env: dict[str, str], protocol: str = "smpp"):
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / ("smsc-sim.log" if protocol == "smpp" else f"smsc-sim-{protocol}.log")
    proc = start(["-m", "services.smsc_simulator", "--protocol", protocol, "--port", str(port), "--control-port", "-1",
                  "--receipt-delay", "0.05"], {**env, "LOG_LEVEL": "WARNING"}, log)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"the simulator did not listen; see {log}")


# --------------------------------------------------------------------------- smpplib baseline


def smpplib_run(port: int, window: int, count: int) -> dict:
    """Submit `count` messages with smpplib keeping `window` unanswered; wait for every receipt."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=30, allow_unknown_opt_params=True)
    state = {"outstanding": 0, "resps": 0, "receipts": 0, "last_resp": 0.0, "last_receipt": 0.0}

    def on_sent(pdu):
        state["outstanding"] -= 1
        state["resps"] += 1
        state["last_resp"] = time.perf_counter()

    def on_received(pdu):
        state["receipts"] += 1
        state["last_receipt"] = time.perf_counter()

    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_received)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="bench", password="bench-password")
    started = time.perf_counter()
    sent = 0
    while state["receipts"] < count:
        while sent < count and state["outstanding"] < window:
            client.send_message(
                source_addr_ton=1, source_addr_npi=1, source_addr="250700000001", dest_addr_ton=1, dest_addr_npi=1,
                destination_addr="250788123123", short_message=TEXT.encode(), data_coding=0, esm_class=0,
                registered_delivery=1,
            )  # fmt: skip
            state["outstanding"] += 1
            sent += 1
        client.read_once()
    elapsed_submit = state["last_resp"] - started
    elapsed_receipt = state["last_receipt"] - started
    client.unbind()
    client.disconnect()
    return {"submit_rate": count / elapsed_submit, "receipt_rate": count / elapsed_receipt}


def smpplib_baseline(port: int, window: int) -> dict:
    result: dict = {}

    def run() -> None:
        smpplib_run(port, window, 200)  # warm-up
        result.update(smpplib_run(port, window, N))

    thread = threading.Thread(target=run, name=f"smpplib-window-{window}")
    thread.start()
    thread.join()
    return result


# --------------------------------------------------------------------------- the pipeline


def send_body(msg_id: int) -> bytes:
    return orjson.dumps({"id": msg_id, "uuid": str(uuid.uuid4()), "channel_uuid": CHANNEL_UUID, "to": "+250788123123",
                         "text": TEXT, "created_on": "2026-11-24T10:00:00Z"})  # fmt: skip


class Counter:
    """Counts `wired` and `delivered` statuses per id, timestamping the arrivals."""

    def __init__(self):
        self.last: dict[str, float] = {}
        self.ids: dict[str, set[int]] = {"wired": set(), "delivered": set()}
        self.want = 0
        self.done = asyncio.Event()

    async def on_status(self, message) -> None:
        body = orjson.loads(message.body)
        ids = self.ids.get(body["status"])
        if ids is None:
            return
        ids.add(body["id"])
        self.last[body["status"]] = time.perf_counter()
        if len(self.ids["delivered"]) >= self.want and len(self.ids["wired"]) >= self.want:
            self.done.set()

    def reset(self, want: int) -> None:
        self.ids = {"wired": set(), "delivered": set()}
        self.want = want
        self.done = asyncio.Event()


async def publish_all(exchange, ids: range) -> float:
    window = asyncio.Semaphore(IN_FLIGHT)
    started = time.perf_counter()

    async def one(msg_id: int) -> None:
        try:
            message = aio_pika.Message(send_body(msg_id), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                       content_type="application/json", message_id=str(msg_id))  # fmt: skip
            await exchange.publish(message, f"send.{CHANNEL_UUID}")
        finally:
            window.release()

    tasks = []
    for msg_id in ids:
        await window.acquire()
        tasks.append(asyncio.ensure_future(one(msg_id)))
    await asyncio.gather(*tasks)
    return started


def profile(procs: dict, window: int) -> list:
    """With BENCH_PROFILE=<dir>: py-spy records each worker during the measured run, as
    collapsed stacks (`<dir>/<worker>-<window>.txt`; py-spy must be installed)."""
    out = os.environ.get("BENCH_PROFILE")
    if not out:
        return []
    Path(out).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid), "--rate", "200", "--format", "raw", "--nonblocking",
                          "-o", f"{out}/{name}-{window}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, proc in procs.items()
    ]  # fmt: skip


def broker_pid() -> int | None:
    """The broker's Erlang VM: the oldest `beam.smp` on this host (rabbitmqctl and friends
    start short-lived ones of their own, which must not count)."""
    oldest: tuple[int, int] | None = None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "beam.smp":
                    continue
                started = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
            except (OSError, ValueError, IndexError):
                continue
            if oldest is None or started < oldest[0]:
                oldest = (started, int(entry.name))
    return oldest[1] if oldest else None


def broker_cpu() -> float:
    pid = broker_pid()
    return cpu_seconds(pid) if pid else 0.0


def channels_config(protocol: str, sim_port: int, window: int) -> dict:
    """The bench channel and its connection to the simulator, for `protocol`."""
    channel = {"uuid": CHANNEL_UUID, "type": protocol, "connection": CONNECTION, "address": "+250700000001"}
    if protocol == "smpp":
        return {"channels": [channel], "smpp_connections": [
            {"name": CONNECTION, "host": "127.0.0.1", "port": sim_port, "system_id": "bench", "password": "bench-password",
             "window": window, "tps": 0, "registered_delivery": 1, "dlr_id_format": "same"}]}  # fmt: skip
    return {"channels": [channel], "smsc_connections": [
        {"name": CONNECTION, "protocol": protocol, "host": "127.0.0.1", "port": sim_port, "username": "bench",
         "password": "bench-password", "window": window, "tps": 0, "registered_delivery": True}]}  # fmt: skip


async def pipeline(sim_port: int, window: int, sim_pid: int, count: int = N, protocol: str = "smpp") -> dict:
    LOGS.mkdir(parents=True, exist_ok=True)
    channels = LOGS / f"{protocol}-channels-{window}.yaml"
    channels.write_text(yaml.safe_dump(channels_config(protocol, sim_port, window)))
    env = bench_env(SWITCHBOARD_CHANNELS=str(channels))
    settings = Settings(_env_file=None, **{k: v for k, v in env.items() if k in ("RABBITMQ_URL", "SWITCHBOARD_PREFIX")})
    transport = f"{protocol}.{CONNECTION}"
    connection = await connect(settings, attempts=3)
    await declare_topology(connection, settings, transports=[transport])
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=2000)
    done = await channel.declare_queue(settings.name("bench.statuses"), exclusive=True)
    for key in ("status.wired.#", "status.delivered.#"):
        await done.bind(settings.name("sms.status"), key)
    counter = Counter()
    await done.consume(counter.on_status, no_ack=True)
    procs = {
        "router": start(["-m", "services.outbound.router"], env, LOGS / f"{protocol}-router.log"),
        "connector": start(["-m", f"services.{protocol}_connector", "--connection", CONNECTION], env,
                           LOGS / f"{protocol}-connector-{window}.log"),
    }  # fmt: skip
    try:
        await wait_consumers(connection, [settings.name("outbound.router"), settings.name(f"transport.{transport}")])
        publish_channel = await connection.channel(publisher_confirms=True)
        exchange = await publish_channel.get_exchange(settings.name("sms.outbound"))
        counter.reset(200)
        await publish_all(exchange, range(1_000_000, 1_000_200))  # warm-up
        await asyncio.wait_for(counter.done.wait(), 60)
        counter.reset(count)
        profilers = profile(procs, f"{protocol}-{window}" if protocol != "smpp" else window)
        pids = {name: p.pid for name, p in procs.items()} | {"smsc-sim": sim_pid}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        broker_before = broker_cpu()
        started = await publish_all(exchange, range(count))
        await asyncio.wait_for(counter.done.wait(), 600)
        elapsed = time.perf_counter() - started
        cpu = {name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / count for name, pid in pids.items()}
        cpu["rabbitmq"] = (broker_cpu() - broker_before) * 1000 / count
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(30)
        return {
            "submit_rate": count / (counter.last["wired"] - started),
            "receipt_rate": count / (counter.last["delivered"] - started),
            "cpu": cpu,
            "elapsed": elapsed,
        }
    finally:
        for proc in procs.values():
            stop(proc)
        extra = [settings.name(n) for n in (f"transport.{transport}", "bench.statuses")]
        await delete_topology(connection, settings, extra)
        await connection.close()
        _clear_redis(env)


async def kannel(sim_port: int, window: int, sim_pid: int, count: int = N, protocol: str = "smpp") -> dict:
    extra = {"smsc-sim": partial(cpu_seconds, sim_pid), "rabbitmq (background)": broker_cpu}
    return await run_kannel(LOGS, sim_port, window, count, TEXT, "+250788123123", extra, protocol)


def side_by_side(protocol: str, port: int, window: int, sim_pid: int, count: int, skipped: str | None):
    """Our pipeline, then Kannel's driver for `protocol` (None when `skipped`), on the same
    simulator at the same window and count. When Kannel ran, our broker figure also gets a
    `rabbitmq net`: the broker serves the whole machine, and its CPU during Kannel's run (which
    does not use it) is the background, taken off at the same rate."""
    ours = asyncio.run(pipeline(port, window, sim_pid, count, protocol))
    theirs = None if skipped else asyncio.run(kannel(port, window, sim_pid, count, protocol))
    if theirs:
        background_per_s = theirs["cpu"]["rabbitmq (background)"] * count / 1000 / theirs["elapsed"]
        ours["cpu"]["rabbitmq net"] = ours["cpu"]["rabbitmq"] - background_per_s * ours["elapsed"] * 1000 / count
    return ours, theirs


def window_label(window: int) -> str:
    return f"window {window}" if window > 1 else "stop-and-wait"


def comparison_rows(protocol: str, window: int, ours: dict, theirs: dict | None, fallback: tuple[str, float] | None = None,
                    submit_note: str = "", receipt_note: str = "") -> list[Row]:  # fmt: skip
    """Kannel's row and our two (submits, receipts), with our rates as a ratio of Kannel's (or
    of `fallback` = (name, rate) when Kannel was skipped; no ratio without either)."""
    label = window_label(window)
    rows = []
    if theirs:
        vs_name, vs_submit, vs_receipt = "Kannel", theirs["submit_rate"], theirs["receipt_rate"]
        rows.append(Row(protocol, f"{label}: Kannel 1.4.5 (bearerbox + smsbox, {DRIVERS[protocol]} driver) -> SMSC ack",
                        theirs["submit_rate"], unit="submit/s", cpu_ms=theirs["cpu"], ratio=1.0,
                        note=f"receipts {theirs['receipt_rate']:,.0f}/s; failed DLRs {theirs['failed']}"))  # fmt: skip
    elif fallback:
        vs_name, vs_submit, vs_receipt = fallback[0], fallback[1], fallback[1]
    else:
        vs_name, vs_submit, vs_receipt = "", None, None
    broker = ours["cpu"].get("rabbitmq net", ours["cpu"]["rabbitmq"])
    rows += [
        Row(protocol, f"{label}: router + connector -> wired", ours["submit_rate"], unit="submit/s", cpu_ms=ours["cpu"],
            ratio=ours["submit_rate"] / vs_submit if vs_submit else None,
            note=f"{'x ' + vs_name + '; ' if vs_name else ''}router+connector+rabbitmq{' net' if theirs else ''} "
                 f"{ours['cpu']['router'] + ours['cpu']['connector'] + broker:.2f} ms/msg; {submit_note}CPU includes the receipt"),
        Row(protocol, f"{label}: receipts -> delivered", ours["receipt_rate"], unit="receipt/s",
            ratio=ours["receipt_rate"] / vs_receipt if vs_receipt else None,
            note=f"{'x ' + vs_name + ' receipts' if vs_name else ''}{receipt_note}"),
    ]  # fmt: skip
    return rows


def install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def kannel_comparison(protocol: str, window: int, count: int) -> list[Row]:
    """The `ucp` and `cimd2` scenarios: `count` messages with receipts through our pipeline,
    then through Kannel's driver, against one simulator process at `window`."""
    install_uvloop()
    skipped = ensure_kannel()
    rows = [Row(protocol, "Kannel baseline", 0.0, note=skipped)] if skipped else []
    sim, port = start_simulator(bench_env(), protocol)
    try:
        ours, theirs = side_by_side(protocol, port, window, sim.pid, count, skipped)
        rows += comparison_rows(protocol, window, ours, theirs)
    finally:
        stop(sim)
    return rows


def run() -> list[Row]:
    install_uvloop()
    relay = asyncio.run(relay_baseline())
    rows = [Row("smpp", "baseline: 2 raw aio-pika hops (outbound relay)", relay["rate"], cpu_ms=relay["cpu"], ratio=1.0)]
    skipped = ensure_kannel()
    if skipped:
        rows.append(Row("smpp", "Kannel baseline", 0.0, note=skipped))
    sim, port = start_simulator(bench_env())
    try:
        for window in WINDOWS:
            bare = smpplib_baseline(port, window)
            ours, theirs = side_by_side("smpp", port, window, sim.pid, N, skipped)
            rows.append(Row("smpp", f"window {window}: bare smpplib, submit_sm -> resp", bare["submit_rate"], unit="submit/s",
                            note=f"receipts {bare['receipt_rate']:,.0f}/s"))  # fmt: skip
            rows += comparison_rows("smpp", window, ours, theirs, fallback=("the relay", relay["rate"]),
                                    submit_note=f"{ours['submit_rate'] / relay['rate']:.2f}x the relay; ",
                                    receipt_note=f"; {ours['receipt_rate'] / bare['receipt_rate']:.2f}x smpplib receipts")  # fmt: skip
    finally:
        stop(sim)
    return rows


if __name__ == "__main__":
    from bench.common import table

    print(table(run()))
