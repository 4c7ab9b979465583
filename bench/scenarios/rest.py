"""Scenario `rest`: SendRequests through the router and the REST connector's `generic` adapter.

The same pipeline as scenario `outbound` (bench publishes to `sms.outbound`, the router and
the connector run as their own processes, a local sink answers 200, `wired` statuses are
counted), with a `rest` channel of aggregator `generic` (JSON body, bearer auth) served by
`python -m services.outbound.rest --aggregator generic` instead of the external connector.

Baseline, same run: the `outbound` scenario's own pipeline (router + external connector),
measured by its code. Both connectors run the shared sender, so the goal is a rate within
15% of the external connector's (ratio >= 0.85).
"""

from __future__ import annotations

import asyncio
import sys

import yaml

from bench.common import Row, bench_env, start, stop
from bench.scenarios.outbound import (
    CHANNEL_UUID,
    LOGS,
    Driver,
    _clear_redis,
    free_port,
    measure,
    pipeline,
    status_id,
    wait_consumers,
)
from services.core.broker import connect, declare_topology, queue_bindings
from services.core.settings import Settings


def generic_channel(port: int) -> dict:
    """A generic rest channel doing what the outbound scenario's external channel does."""
    return {
        "uuid": CHANNEL_UUID, "type": "rest", "aggregator": "generic", "id": 346, "address": "+5582999489287",
        "config": {"send_url": f"http://127.0.0.1:{port}/send", "content_type": "json",
                   "auth": {"type": "bearer", "token": "bench-token"}, "success_status": [200]},
    }  # fmt: skip


async def rest_pipeline() -> dict:
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    channels = LOGS / "rest-channels.yaml"
    channels.write_text(yaml.safe_dump({"channels": [generic_channel(port)]}))
    env = bench_env(SWITCHBOARD_CHANNELS=str(channels))
    settings = Settings(_env_file=None, **{k: v for k, v in env.items() if k in ("RABBITMQ_URL", "SWITCHBOARD_PREFIX")})
    connection = await connect(settings, attempts=3)
    await declare_topology(connection, settings)
    channel = await connection.channel()
    done = await channel.declare_queue(settings.name("bench.wired"), exclusive=True)
    await done.bind(settings.name("sms.status"), "status.wired.#")
    sink = start(["-m", "bench.http_sink", str(port)], env, LOGS / "rest-sink.log")
    procs = {
        "router": start(["-m", "services.outbound.router"], env, LOGS / "rest-router.log"),
        "rest": start(["-m", "services.outbound.rest", "--aggregator", "generic"], env, LOGS / "rest.log"),
    }
    try:
        await wait_consumers(connection, [settings.name("outbound.router"), settings.name("transport.rest.generic")])
        driver = await Driver(connection, settings.name("sms.outbound"), f"send.{CHANNEL_UUID}", done.name, status_id).start()
        return await measure(driver, procs)
    finally:
        for proc in [*procs.values(), sink]:
            stop(proc)
        for name in queue_bindings(settings):
            await channel.queue_delete(settings.name(name))
        await connection.close()
        _clear_redis(env)


def run() -> list[Row]:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    external = asyncio.run(pipeline())
    rest = asyncio.run(rest_pipeline())
    ratio = rest["rate"] / external["rate"]
    return [
        Row("rest", "baseline: router + external connector", external["rate"], p50_ms=external["p50"], p99_ms=external["p99"],
            cpu_ms=external["cpu"], ratio=1.0, note=f"scenario outbound's pipeline; latency paced at {external['paced']:.0f}/s"),
        Row("rest", "router + rest connector (generic)", rest["rate"], p50_ms=rest["p50"], p99_ms=rest["p99"],
            cpu_ms=rest["cpu"], ratio=ratio,
            note=f"goal >= 0.85 x external: {'met' if ratio >= 0.85 else 'NOT met'}; latency paced at {rest['paced']:.0f}/s"),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.common import table

    print(table(run()), file=sys.stdout)
