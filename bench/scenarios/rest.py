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

from bench.common import Row
from bench.scenarios.outbound import (
    CHANNEL_UUID,
    pipeline,
)


def generic_channel(port: int) -> dict:
    """A generic rest channel doing what the outbound scenario's external channel does."""
    return {
        "uuid": CHANNEL_UUID, "type": "rest", "aggregator": "generic", "id": 346, "address": "+5582999489287",
        "config": {"send_url": f"http://127.0.0.1:{port}/send", "content_type": "json",
                   "auth": {"type": "bearer", "token": "bench-token"}, "success_status": [200]},
    }  # fmt: skip


async def rest_pipeline() -> dict:
    return await pipeline(
        generic_channel, ("-m", "services.outbound.rest", "--aggregator", "generic"), "transport.rest.generic", "rest"
    )


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
