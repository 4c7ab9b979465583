"""A flow engine in 30 lines: answer every incoming message, log every status.

Run it next to Switchboard (`make run` does): `python examples/flow_engine.py`.
It uses only the broker and the bodies of services/core/models.py (schemas/ has them as
JSON Schema and schemas/asyncapi.yaml as AsyncAPI, for engines in other languages).
"""

import os

from faststream import FastStream, Logger
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

from services.core.models import ChannelEvent, InboundMessage, SendRequest, StatusUpdate

PREFIX = os.environ.get("SWITCHBOARD_PREFIX", "")
broker = RabbitBroker(os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/"))
outbound = broker.publisher(exchange=RabbitExchange(f"{PREFIX}sms.outbound", ExchangeType.TOPIC, declare=False), persist=True)
app = FastStream(broker)


@broker.subscriber(RabbitQueue(f"{PREFIX}inbound.messages", declare=False))
async def on_message(body: InboundMessage | ChannelEvent, logger: Logger) -> None:
    if isinstance(body, ChannelEvent):
        return logger.info(f"event {body.event_type} from {body.urn}")
    reply = SendRequest(id=f"reply-{body.uuid}", channel_uuid=body.channel_uuid, to=body.urn, text=f"You said: {body.text}")
    await outbound.publish(reply, routing_key=f"send.{body.channel_uuid}", message_id=str(reply.id))
    logger.info(f"{body.urn} said {body.text!r}; replied as {reply.id}")


@broker.subscriber(RabbitQueue(f"{PREFIX}status.updates", declare=False))
async def on_status(status: StatusUpdate, logger: Logger) -> None:
    error = f" {status.error.code}" if status.error else ""
    logger.info(f"status {status.id} {status.status}{error}")


if __name__ == "__main__":
    import asyncio

    asyncio.run(app.run())
