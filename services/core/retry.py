"""Delayed retries through the `retry.<delay_ms>` queues (CONTRACT section 8).

A retry is the SendRequest with `attempt` raised, published to `sms.retry` under the delay;
the `CC` header carries the transport routing key, which RabbitMQ keeps as one of the
message's routing keys, so when the TTL expires the retry queue dead-letters it back to
`sms.transport` under exactly the key it came from.
"""

from __future__ import annotations

import orjson

from .broker import Delivery
from .settings import Settings


def retry_delay_ms(settings: Settings, attempt: int) -> int | None:
    """The delay before attempt `attempt + 1`, or None when `attempt` was the last one.

    `attempt` counts the attempts made so far, this one included (1 after the first send).
    """
    delays = settings.retry_delays_ms
    return delays[attempt - 1] if 1 <= attempt <= len(delays) else None


def retry_body(raw: bytes, attempt: int) -> bytes:
    """The original body with `attempt` set, every other field (unknown ones too) kept."""
    data = orjson.loads(raw)
    data["attempt"] = attempt
    return orjson.dumps(data)


def schedule_retry(delivery: Delivery, transport_key: str, attempt: int, delay_ms: int, message_id: str | None = None) -> None:
    """Publish the delivery's body again through `retry.<delay_ms>` (confirmed before ack)."""
    delivery.publish(
        "sms.retry",
        str(delay_ms),
        retry_body(delivery.message.body, attempt),
        headers={"CC": [transport_key]},
        message_id=message_id,
    )
