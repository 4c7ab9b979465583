"""The baseline hop: raw aio-pika, consume -> publish with confirm -> ack, nothing else.

`python -m bench.relay IN_QUEUE OUT_EXCHANGE OUT_KEY [PREFETCH]`. Each delivery is handled in
its own task (as aio-pika does), republished persistent to OUT_EXCHANGE and acked once the
broker confirmed it. This is what a hop costs with no validation, no HTTP and no Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aio_pika


async def relay(in_queue: str, out_exchange: str, out_key: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=prefetch)
    publish_channel = await connection.channel(publisher_confirms=True)
    exchange = await publish_channel.get_exchange(out_exchange)
    queue = await consume_channel.get_queue(in_queue)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await exchange.publish(
            aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json"),
            out_key,
        )
        await message.ack()

    await queue.consume(on_message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await connection.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    args = sys.argv[1:]
    asyncio.run(relay(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else 200))
