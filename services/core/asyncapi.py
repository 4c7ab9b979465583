"""The wire contract (CONTRACT sections 4, 5 and 12) as FastStream publishers and subscribers:
the single source of `schemas/asyncapi.yaml` (AsyncAPI 3.0).

Every exchange, routing key, queue and body is declared here over the pydantic models of
:mod:`services.core.models`, so a flow engine developer can read (or generate code from)
one document. Nothing here runs: the broker object only carries the declarations.
FastStream's document has no place for queue types and arguments, so each queue's
description spells them out, computed from :func:`services.core.broker.queue_arguments` (the
same arguments `switchboard topology` declares).

`python -m services.core.asyncapi` prints the YAML (`switchboard asyncapi`); `--write`
rewrites `schemas/asyncapi.yaml` (`make schemas`), `--check` exits 1 when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.specification import AsyncAPI

from .broker import CHANNELS, EXCHANGES, UNBOUND, queue_arguments, queue_bindings
from .channels import AGGREGATORS
from .models import ChannelEvent, ChannelLog, Heartbeat, InboundMessage, SendRequest, StatusUpdate
from .settings import Settings

PATH = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.yaml"
#: The document describes a default installation: no prefix, the default retry delays.
DEFAULTS = Settings.model_construct()
VERSION = "1.0.0"
DESCRIPTION = (
    "Switchboard, an SMS channel gateway for flow engines, as seen on RabbitMQ. Every exchange is "
    "durable; every body is UTF-8 JSON with content_type application/json and a message_id. Messages, "
    "statuses and events are persistent and published with publisher confirms; ChannelLogs go out "
    "without confirms; heartbeats are neither persistent nor confirmed and expire after 30 s. "
    "SWITCHBOARD_PREFIX, when set, is prepended to every exchange and queue name."
)

broker = RabbitBroker(description="The RabbitMQ broker every Switchboard process and the flow engine share.")
exchange = {
    name: RabbitExchange(name, type=ExchangeType.TOPIC if kind == "topic" else ExchangeType.DIRECT, durable=True)
    for name, kind in EXCHANGES.items()
}
# The broker routes by channel: `sms.outbound` passes `send.#` to CHANNELS (direct, internal),
# where the router keeps one binding per channel; what none matches goes to UNBOUND (fanout).
exchange[CHANNELS] = RabbitExchange(CHANNELS, type=ExchangeType.DIRECT, durable=True,
                                    arguments={"alternate-exchange": UNBOUND})  # fmt: skip
exchange[UNBOUND] = RabbitExchange(UNBOUND, type=ExchangeType.FANOUT, durable=True)


def _arguments(name: str) -> str:
    args = queue_arguments(DEFAULTS, name)
    kind = args.pop("x-queue-type", "classic")
    listed = ", ".join(f"{k}={v}" for k, v in args.items()) or "none"
    return f"Queue type: {kind}, durable. Arguments: {listed}."


def _queue(name: str, *, shown: str | None = None, routing_key: str | None = None) -> RabbitQueue:
    exchange_name, keys = queue_bindings(DEFAULTS)[name] if name in queue_bindings(DEFAULTS) else ("", [])
    return RabbitQueue(
        shown or name, queue_type=QueueType.QUORUM, durable=True, declare=False,
        routing_key=routing_key or (keys[0] if keys else ""), arguments=queue_arguments(DEFAULTS, name),
    )  # fmt: skip


def _bound(name: str, extra: str = "") -> str:
    exchange_name, keys = queue_bindings(DEFAULTS, ["<connection>"])[name]
    how = f"with {', '.join(keys)}" if any(keys) else "(fanout: every message)"
    by_channel = (f" Also bound to {CHANNELS} with send.<channel_uuid> for each channel the channels file gives this "
                  "transport (the router keeps these bindings)." if name.startswith("transport.") else "")  # fmt: skip
    return f"Bound to {exchange_name} {how}.{by_channel} {_arguments(name)} {extra}".strip()


# ---------------------------------------------------------------------- publishers (send)

broker.publisher(
    exchange=exchange["sms.outbound"], routing_key="send.{channel_uuid}", persist=True, schema=SendRequest,
    title="sms.outbound", description="The flow engine asks for a message to be sent (also `switchboard send`). "
    f"Confirmed publish. The broker routes it: sms.outbound passes send.# to {CHANNELS} (direct, internal), where "
    "the router keeps one binding send.<channel_uuid> per channel to that channel's transport queue; what no binding "
    f"matches goes through the alternate exchange {UNBOUND} (fanout) to outbound.router.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.transport"], routing_key="{transport}", persist=True, schema=SendRequest,
    title="sms.transport", description="The router (and the retry queues) hand a SendRequest to its connector. "
    "Direct exchange; routing key `external`, `rest.<aggregator>` (" + ", ".join(AGGREGATORS) + "), `smpp.<connection>`, "
    "`ucp.<connection>` or `cimd2.<connection>`. `attempt` counts the attempts made so far.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.inbound"], routing_key="msg.{channel_uuid}", persist=True, schema=InboundMessage,
    title="sms.inbound.msg", description="A message from a phone, published by the inbound edge or an SMSC connector "
    "after it was received, before the provider is answered.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.inbound"], routing_key="event.{event_type}.{channel_uuid}", persist=True, schema=ChannelEvent,
    title="sms.inbound.event", description="A channel event (stop_contact).",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.status"], routing_key="status.{status}.{channel_uuid}", persist=True, schema=StatusUpdate,
    title="sms.status", description="One StatusUpdate per message and state (queued, wired, sent, delivered, errored, "
    "failed), from the router, the connectors and the inbound edge. Dashboards bind their own queues here.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.logs"], routing_key="log.{channel_uuid}", persist=True, schema=ChannelLog,
    title="sms.logs", description="One ChannelLog per provider exchange; secrets replaced by **********. Published "
    "without publisher confirms, batched; dropped (and counted) while the broker is away. Nobody is required to listen.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.retry"], routing_key="{delay_ms}", persist=True, schema=SendRequest,
    title="sms.retry", description="An errored send waits in retry.<delay_ms> and returns to sms.transport. Default "
    "delays (ms): " + ", ".join(str(d) for d in DEFAULTS.retry_delays_ms) + ".",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.dead"], routing_key="{original_routing_key}", persist=True, schema=dict[str, Any],
    title="sms.dead", description="Poison messages: the original body unchanged, with headers x-error (the reason), "
    "x-original-exchange, x-original-routing-key, x-queue, x-service; messages over their queue's x-delivery-limit "
    "arrive with the broker's x-death header instead.",
)  # fmt: skip
broker.publisher(
    exchange=exchange["sms.health"], routing_key="health.{service}.{instance}", persist=False, schema=Heartbeat,
    title="sms.health", description="Every worker's heartbeat every 5 s: not persistent, not confirmed, per-message "
    "expiration 30 s. A worker is stale after 3 missed heartbeats. SMSC connectors add connection, protocol, state "
    "(bound, connecting, throttled, unbound), window, tps and last_error.",
)  # fmt: skip


# ---------------------------------------------------------------------- subscribers (receive)


@broker.subscriber(_queue("outbound.router"), exchange[UNBOUND], title="outbound.router",
                   description=_bound("outbound.router", "SendRequests no channel binding matched. Consumed by the "
                                      "router: an unknown channel becomes failed channel_not_found, a known one is "
                                      "forwarded to sms.transport."))  # fmt: skip
async def router(body: SendRequest) -> None: ...


@broker.subscriber(_queue("transport.external"), exchange["sms.transport"], title="transport.external",
                   description=_bound("transport.external", "Consumed by the external connector."))  # fmt: skip
async def external_connector(body: SendRequest) -> None: ...


@broker.subscriber(
    _queue("transport.rest.twilio", shown="transport.rest.{aggregator}", routing_key="rest.{aggregator}"),
    exchange["sms.transport"], title="transport.rest",
    description=_bound("transport.rest.twilio", "One queue per aggregator (" + ", ".join(AGGREGATORS) + "); consumed by the REST connector."),
)  # fmt: skip
async def rest_connector(body: SendRequest) -> None: ...


@broker.subscriber(
    _queue("transport.smpp.<connection>", shown="transport.smpp.{connection}", routing_key="smpp.{connection}"),
    exchange["sms.transport"], title="transport.smpp",
    description=_bound("transport.smpp.<connection>", "One queue per SMPP connection (likewise transport.ucp.<connection> "
                       "and transport.cimd2.<connection>); consumed by its connector only while bound."),
)  # fmt: skip
async def smpp_connector(body: SendRequest) -> None: ...


@broker.subscriber(_queue("inbound.messages"), exchange["sms.inbound"], title="inbound.messages",
                   description=_bound("inbound.messages", "The flow engine's default feed of messages (msg.#) and events (event.#); "
                                      "bodies are InboundMessage or ChannelEvent."))  # fmt: skip
async def flow_engine_inbound(body: InboundMessage | ChannelEvent) -> None: ...


@broker.subscriber(_queue("status.updates"), exchange["sms.status"], title="status.updates",
                   description=_bound("status.updates", "The flow engine's default feed of statuses."))  # fmt: skip
async def flow_engine_statuses(body: StatusUpdate) -> None: ...


@broker.subscriber(
    _queue(f"retry.{DEFAULTS.retry_delays_ms[0]}", shown="retry.{delay_ms}", routing_key="{delay_ms}"), exchange["sms.retry"],
    title="retry", description=_bound(f"retry.{DEFAULTS.retry_delays_ms[0]}", "One queue per delay; x-message-ttl is the "
    "delay, and expired messages dead-letter back to sms.transport with their original routing key. Nobody consumes them."),
)  # fmt: skip
async def retry_wait(body: SendRequest) -> None: ...


@broker.subscriber(_queue("dead.letters"), exchange["sms.dead"], title="dead.letters",
                   description=_bound("dead.letters", "Inspection and replay: `switchboard dead list|replay`."))  # fmt: skip
async def dead_letters(body: dict[str, Any]) -> None: ...


@broker.subscriber(_queue("dead.statuses"), exchange["sms.dead"], title="dead.statuses",
                   description=_bound("dead.statuses", "A copy of every dead letter, read by the router: a "
                                      "SendRequest the broker parked itself (its delivery limit) gets a failed "
                                      "status with code dead_lettered."))  # fmt: skip
async def dead_statuses(body: dict[str, Any]) -> None: ...


@broker.subscriber(
    RabbitQueue("dashboard.health", exclusive=True, auto_delete=True, declare=False, routing_key="health.#"), exchange["sms.health"],
    title="dashboard.feeds", description="The dashboard's own queues: server-named, exclusive, auto-deleted, "
    "x-max-length 20000 with x-overflow drop-head, consumed without acks; bound to sms.status (status.#), "
    "sms.health (health.#) and sms.dead (#).",
)  # fmt: skip
async def dashboard_health(body: Heartbeat) -> None: ...


# ---------------------------------------------------------------------- the document


def document() -> dict:
    """The AsyncAPI 3.0 document as plain data."""
    spec = AsyncAPI(broker, title="Switchboard", version=VERSION, description=DESCRIPTION, schema_version="3.0.0")
    doc = spec.to_specification().to_jsonable()
    # FastStream lists subscribers in no stable order: sort, so that the file only changes with the code
    for section in (doc, doc.get("components", {})):
        for key in ("channels", "operations", "messages", "schemas"):
            if isinstance(section.get(key), dict):
                section[key] = dict(sorted(section[key].items()))
    return doc


def to_yaml(doc: dict | None = None) -> str:
    return yaml.safe_dump(doc or document(), sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str]) -> int:
    text = to_yaml()
    if "--write" in argv:
        PATH.write_text(text)
        return 0
    if "--check" in argv:
        if not PATH.exists() or PATH.read_text() != text:
            print(f"{PATH.name} is stale: run make schemas", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
