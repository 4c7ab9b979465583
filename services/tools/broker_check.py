"""`make run`'s first step: is there a RabbitMQ (and a Redis) to talk to? If not, say how to get one.

Run as `python -m services.tools.broker_check`; exit 0 when both answer, 1 with instructions
otherwise, so that a fresh clone without a broker gets three lines of advice, not a trace.
"""

from __future__ import annotations

import asyncio
import sys

import aio_pika
import redis.asyncio as aioredis

from ..core.redact import redact
from ..core.settings import Settings

HOW_TO_START = """\
Start them with Docker:
    docker compose -f compose/docker-compose.yml up -d rabbitmq redis
or with your distribution's packages:
    rabbitmq-server -detached
    redis-server --daemonize yes
then run this again (RABBITMQ_URL and REDIS_URL choose other addresses)."""


async def rabbitmq_problem(url: str, timeout: float = 5.0) -> str | None:
    """None when an AMQP handshake with `url` succeeds, else what went wrong (password masked)."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url, timeout=timeout), timeout + 1)
    except aio_pika.exceptions.ProbableAuthenticationError:
        return f"RabbitMQ at {redact(url)} answers but refuses the user and password in RABBITMQ_URL"
    except Exception as exc:
        return f"no RabbitMQ answers at {redact(url)} ({exc or type(exc).__name__})"
    await connection.close()
    return None


async def redis_problem(url: str, timeout: float = 5.0) -> str | None:
    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    except Exception as exc:
        return f"no Redis answers at {redact(url)} ({exc or type(exc).__name__})"
    finally:
        await client.aclose()
    return None


async def problems(settings: Settings) -> list[str]:
    *nodes, redis = await asyncio.gather(*(rabbitmq_problem(url) for url in settings.rabbitmq_urls),
                                        redis_problem(settings.redis_url))  # fmt: skip
    # A cluster is reachable when one of its nodes answers.
    found = ([] if any(p is None for p in nodes) else nodes) + [redis]
    return [p for p in found if p]


def main() -> int:
    found = asyncio.run(problems(Settings()))
    if not found:
        return 0
    for line in found:
        print(line, file=sys.stderr)
    print(HOW_TO_START, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
