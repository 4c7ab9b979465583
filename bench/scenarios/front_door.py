"""Scenario `front-door`: courier's KN requests through the Kannel door to the SMSC simulator.

10,000 `GET /cgi-bin/sendsms` (courier's parameters, `dlr-mask=27`) from 64 keep-alive
connections to the inbound edge; the router and the SMPP connector (window 10) take them to
the simulator, which sends a receipt for each; the callbacks worker calls the `dlr-url` back
(8, then 1) on a counting HTTP sink. Every service is its own process.

Reported:
- sendsms answered per second at full speed (202s / elapsed), with p50 and p99 of the answer;
- DLR callbacks per second (first sendsms -> last `status=1` callback, and 2 callbacks per
  message, so twice that in GETs);
- p99 of the answer at half that rate (paced), the contract's latency goal;
- CPU ms per message of each process (edge, router, connector, callbacks), next to the `smpp`
  scenario's pipeline (router + connector at window 10, SendRequests published straight to
  `sms.outbound`) measured in the same run: the door's cost is the edge plus the callbacks
  worker, against the pipeline it feeds.

`python -m bench.scenarios.front_door client URL N CONNECTIONS RATE` and `... sink PORT
TARGET...` are the load generator's and the sink's own processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import quote_plus

import yaml

from bench.common import ROOT, Row, bench_env, cpu_seconds, percentile, start, stop
from bench.scenarios import smpp as smpp_scenario
from bench.scenarios.inbound import delete_prefixed, wait_healthy
from bench.scenarios.outbound import LOGS, _clear_redis, free_port

N = int(os.environ.get("BENCH_FRONT_DOOR_N", "10000"))
CONNECTIONS = 64
WARM_UP = 300
CHANNEL_UUID = "6d3e7b2f-1d7f-4c9f-8e2b-8f4a3c2d1e0f"
CONNECTION = "bench-door-smsc"
USER, PASSWORD = "rapidpro", "bench-kn-password"
TEXT = "Love is patient. Love is kind."


# --------------------------------------------------------------------------- load generator process


def sendsms_path(msg_id: int, sink_port: int) -> bytes:
    dlr = f"http://127.0.0.1:{sink_port}/c/kn/4b4c/status?id={msg_id}&status=%d"
    params = {"dlr-mask": "27", "dlr-url": dlr, "from": "2020", "password": PASSWORD, "text": TEXT,
              "to": "+250788383383", "username": USER}  # fmt: skip
    return ("/cgi-bin/sendsms?" + "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())).encode()


async def client(host: str, port: int, sink_port: int, first: int, count: int, connections: int, rate: float) -> dict:
    """`count` sendsms over `connections` keep-alive connections, paced at `rate`/s (0: flat out)."""
    latencies: list[float] = []
    bad = 0
    next_index = 0
    started = time.perf_counter()
    wall = time.time()

    async def worker() -> None:
        nonlocal next_index, bad
        reader, writer = await asyncio.open_connection(host, port)
        while next_index < count:
            index = next_index
            next_index += 1
            if rate:
                due = started + index / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            request = b"GET " + sendsms_path(first + index, sink_port) + b" HTTP/1.1\r\nHost: edge\r\n\r\n"
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if not head.startswith(b"HTTP/1.1 202"):
                bad += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"rate": count / elapsed, "started": wall, "non202": bad, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}  # fmt: skip


class SinkProtocol(asyncio.Protocol):
    """Answers `200 ok` to everything (keep-alive); counts DLR GETs by type and says when the
    count of `status=1` reaches each target."""

    delivered = 0
    wired = 0
    targets: list[int] = []

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = 0
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            line = self.buffer[: self.buffer.find(b"\r\n")]
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                break
            self.buffer = self.buffer[end + 4 + length :]
            replies += 1
            cls = SinkProtocol
            if b"&status=1 " in line:
                cls.delivered += 1
                if cls.targets and cls.delivered >= cls.targets[0]:
                    print(f"reached {cls.targets.pop(0)} {time.time()} wired {cls.wired}", flush=True)
            elif b"&status=8 " in line:
                cls.wired += 1
        if replies:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * replies)


async def sink(port: int, targets: list[int]) -> None:
    SinkProtocol.targets = sorted(targets)
    server = await asyncio.get_running_loop().create_server(SinkProtocol, "127.0.0.1", port, backlog=1024)
    print("listening", flush=True)
    async with server:
        await asyncio.Event().wait()


# --------------------------------------------------------------------------- the scenario


class SinkWatcher:
    """Reads the sink's stdout in a thread: target -> wall time it was reached."""

    def __init__(self, proc: subprocess.Popen):
        self.reached: dict[int, float] = {}
        self.listening = threading.Event()
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            parts = line.split()
            with self._changed:
                if parts[:1] == ["listening"]:
                    self.listening.set()
                elif parts[:1] == ["reached"]:
                    self.reached[int(parts[1])] = float(parts[2])
                self._changed.notify_all()

    def wait(self, target: int, timeout: float) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: target in self.reached, timeout):
                raise SystemExit(f"front-door: {target} delivered DLRs not reached in {timeout:.0f} s")
            return self.reached[target]


def run_client(url_port: int, sink_port: int, first: int, count: int, rate: float, env) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.front_door", "client", str(url_port), str(sink_port), str(first), str(count),
         str(CONNECTIONS), str(rate)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"front-door client failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def channels_file(sim_port: int) -> str:
    return yaml.safe_dump({
        "channels": [{"uuid": CHANNEL_UUID, "type": "smpp", "connection": CONNECTION, "address": "+250700000001",
                      "country": "RW"}],
        "smpp_connections": [{"name": CONNECTION, "host": "127.0.0.1", "port": sim_port, "system_id": "bench",
                              "password": "bench-password", "window": 10, "tps": 0, "registered_delivery": 1,
                              "dlr_id_format": "same"}],
        "front_doors": [{"name": "bench-kn", "kind": "kannel", "username": USER, "password": PASSWORD,
                         "channel": CHANNEL_UUID, "max_parts": 10}],
    })  # fmt: skip


def door(sim_port: int) -> dict:
    LOGS.mkdir(parents=True, exist_ok=True)
    channels = LOGS / "front-door-channels.yaml"
    channels.write_text(channels_file(sim_port))
    edge_port, sink_port = free_port(), free_port()
    env = bench_env(SWITCHBOARD_CHANNELS=str(channels), INBOUND_HOST="127.0.0.1", INBOUND_PORT=str(edge_port))
    half_n = N // 2
    targets = [WARM_UP, WARM_UP + N, WARM_UP + N + half_n]
    sink_proc = subprocess.Popen([sys.executable, "-m", "bench.scenarios.front_door", "sink", str(sink_port), *map(str, targets)],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    watcher = SinkWatcher(sink_proc)
    procs = {
        "inbound": start(["-m", "services.inbound"], env, LOGS / "front-door-inbound.log"),
        "router": start(["-m", "services.outbound.router"], env, LOGS / "front-door-router.log"),
        "connector": start(["-m", "services.smpp_connector", "--connection", CONNECTION], env, LOGS / "front-door-connector.log"),
        "callbacks": start(["-m", "services.outbound.callbacks"], env, LOGS / "front-door-callbacks.log"),
    }  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{edge_port}/health", procs["inbound"])
        assert watcher.listening.wait(30), "the sink did not start"
        warm = run_client(edge_port, sink_port, 0, WARM_UP, 0, env)
        watcher.wait(WARM_UP, 120)
        print(f"front-door: warm-up done ({warm['rate']:,.0f} req/s)", file=sys.stderr, flush=True)
        before = {name: cpu_seconds(p.pid) for name, p in procs.items()}
        top = run_client(edge_port, sink_port, WARM_UP, N, 0, env)
        last_dlr = watcher.wait(WARM_UP + N, 900)
        cpu = {name: (cpu_seconds(p.pid) - before[name]) * 1000 / N for name, p in procs.items()}
        print(f"front-door: max {top['rate']:,.0f} req/s; pacing at half", file=sys.stderr, flush=True)
        half = run_client(edge_port, sink_port, WARM_UP + N, half_n, top["rate"] / 2, env)
        watcher.wait(WARM_UP + N + half_n, 900)
        return {"top": top, "half": half, "dlr_rate": N / (last_dlr - top["started"]), "cpu": cpu}
    finally:
        for proc in procs.values():
            stop(proc)
        stop(sink_proc)
        asyncio.run(delete_prefixed(env))
        _clear_redis(env)


def run() -> list[Row]:
    LOGS.mkdir(parents=True, exist_ok=True)
    sim, port = smpp_scenario.start_simulator(bench_env())
    try:
        smpp_scenario.N = N  # the same count through the plain pipeline, same simulator
        print("front-door: smpp pipeline reference (window 10)", file=sys.stderr, flush=True)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        reference = asyncio.run(smpp_scenario.pipeline(port, 10))
        print("front-door: the Kannel door", file=sys.stderr, flush=True)
        result = door(port)
    finally:
        stop(sim)
    top, half, cpu = result["top"], result["half"], result["cpu"]
    ref_cpu = reference["cpu"]
    pipeline_cpu = ref_cpu["router"] + ref_cpu["connector"]
    door_cpu = cpu["inbound"] + cpu["callbacks"]
    return [
        Row("front-door", "reference: smpp pipeline, window 10 -> wired", reference["submit_rate"], "submit/s",
            cpu_ms=ref_cpu, ratio=1.0, note=f"receipts {reference['receipt_rate']:,.0f}/s"),
        Row("front-door", f"sendsms, {CONNECTIONS} keep-alive clients, {N:,} requests", top["rate"], "req/s", top["p50_ms"],
            top["p99_ms"], cpu, top["rate"] / reference["submit_rate"],
            f"non-202: {top['non202']}; door CPU (edge + callbacks) {door_cpu:.2f} ms = {door_cpu / pipeline_cpu:.0%} of the "
            f"pipeline's router + connector ({pipeline_cpu:.2f} ms)"),
        Row("front-door", "DLR callbacks (8 then 1 per message) -> delivered", result["dlr_rate"], "msg/s",
            ratio=result["dlr_rate"] / reference["receipt_rate"], note=f"{2 * result['dlr_rate']:,.0f} GET/s to the dlr-url"),
        Row("front-door", f"sendsms paced at half max ({top['rate'] / 2:,.0f} req/s offered)", half["rate"], "req/s",
            half["p50_ms"], half["p99_ms"], note=f"non-202: {half['non202']}; goal p99 < 50 ms"),
    ]  # fmt: skip


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if sys.argv[1:2] == ["client"]:
        edge_port, sink_port, first, count, connections, rate = sys.argv[2:8]
        result = asyncio.run(client("127.0.0.1", int(edge_port), int(sink_port), int(first), int(count), int(connections), float(rate)))
        print(json.dumps(result))
    elif sys.argv[1:2] == ["sink"]:
        asyncio.run(sink(int(sys.argv[2]), [int(t) for t in sys.argv[3:]]))
    else:
        from bench.common import table

        print(table(run()))
