"""Prometheus helpers: shared metric objects and a tiny /metrics + /health server for workers
without an HTTP listener of their own (`METRICS_PORT`)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

MESSAGES = Counter("switchboard_messages_total", "Messages handled by a worker", ["service", "outcome"])
PUBLISH_SECONDS = Histogram(
    "switchboard_publish_seconds",
    "Time from publish to broker confirm",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
SENDS = Counter("switchboard_sends_total", "Provider sends by transport and result", ["transport", "status"])
SEND_SECONDS = Histogram("switchboard_send_seconds", "Provider request latency", ["transport"])
IN_FLIGHT = Gauge("switchboard_in_flight", "Messages being handled", ["service"])


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


async def serve_metrics(port: int, host: str = "0.0.0.0", ready=lambda: True) -> asyncio.base_events.Server:
    """Serve `/metrics` and `/health` on `port` with a minimal HTTP/1.0 responder."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            path = request_line.split()[1].decode() if len(request_line.split()) > 1 else "/"
            if path.startswith("/metrics"):
                body, ctype, code = *metrics_payload(), "200 OK"
            elif path.startswith("/health"):
                ok = ready()
                body, ctype = (b'{"status":"ok"}' if ok else b'{"status":"down"}'), "application/json"
                code = "200 OK" if ok else "503 Service Unavailable"
            else:
                body, ctype, code = b"not found", "text/plain", "404 Not Found"
            writer.write(
                f"HTTP/1.0 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("metrics listening", extra={"port": port})
    return server
